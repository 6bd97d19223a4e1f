"""Who may call which project route: viewers read, editors also update, owners do everything.

A caller who is not a member gets 404 on every route, so a project's existence does not leak.
The callers are real users of the auth service (it is the one that knows the roles).
"""

import pytest

from tests.plugins.roles import STRANGER, role_matrix
from tests.problems import assert_problem

# Route name (the OpenAPI operationId) -> (method, path, body).
ROUTES = {
    "get_project": ("GET", "/api/v1/projects/{project}", None),
    "update_project": ("PATCH", "/api/v1/projects/{project}", {"name": "Renamed"}),
    "delete_project": ("DELETE", "/api/v1/projects/{project}", None),
    "get_membership": ("GET", "/api/v1/projects/{project}/membership", None),
    "list_members": ("GET", "/api/v1/projects/{project}/members", None),
    "add_member": (
        "POST",
        "/api/v1/projects/{project}/members",
        {"username": "newcomer", "role": "viewer"},
    ),
    "update_member": ("PATCH", "/api/v1/projects/{project}/members/{target}", {"role": "editor"}),
    "remove_member": ("DELETE", "/api/v1/projects/{project}/members/{target}", None),
}

READ = {"owner": 200, "editor": 200, "viewer": 200, STRANGER: 404}
MATRIX = {
    "get_project": READ,
    "update_project": {"owner": 200, "editor": 200, "viewer": 403, STRANGER: 404},
    "delete_project": {"owner": 204, "editor": 403, "viewer": 403, STRANGER: 404},
    "get_membership": READ,
    "list_members": READ,
    "add_member": {"owner": 201, "editor": 403, "viewer": 403, STRANGER: 404},
    "update_member": {"owner": 200, "editor": 403, "viewer": 403, STRANGER: 404},
    "remove_member": {"owner": 204, "editor": 403, "viewer": 403, STRANGER: 404},
}


@pytest.fixture
def scene(user, project):
    """A secret project of alice's with a viewer `target`, and a caller holding `role` in it."""

    async def build(role: str):
        alice, target = await user("alice"), await user("target")
        await user("newcomer")
        caller = alice if role == "owner" else await user("caller")
        members = {"editors": [caller]} if role == "editor" else {}
        viewers = [target, caller] if role == "viewer" else [target]
        created = await project(alice, name="Secret tunnel", viewers=viewers, **members)
        return created, caller, target

    return build


@role_matrix(MATRIX)
async def test_project_route_by_role(
    api, scene, stored_members, stored_project, route, role, expected
):
    created, caller, target = await scene(role)
    members_before = stored_members(created["id"])
    method, path, body = ROUTES[route]

    response = await api.request(
        method, path.format(project=created["id"], target=target.id), caller, json=body
    )

    if expected < 400:
        assert response.status == expected, await response.text()
        return
    if expected == 404:
        problem = await assert_problem(response, 404, "project_not_found")
        assert "Secret tunnel" not in str(problem)
    else:
        await assert_problem(response, 403, "forbidden")
    assert stored_project(created["id"]) == {"name": "Secret tunnel", "description": ""}
    assert stored_members(created["id"]) == members_before
