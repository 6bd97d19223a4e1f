"""Who may call which project route: viewers read, editors also update, owners do everything.

A caller who is not a member gets 404 on every route, so a project's existence does not leak.
"""

import pytest

from tests.problems import assert_problem

ROLES = ["owner", "editor", "viewer", "stranger"]

ROUTES = [
    # (method, path, body, status when allowed, roles allowed); other members get 403.
    pytest.param(
        "GET", "/api/v1/projects/{project}", None, 200, {"owner", "editor", "viewer"}, id="get"
    ),
    pytest.param(
        "PATCH",
        "/api/v1/projects/{project}",
        {"name": "Renamed"},
        200,
        {"owner", "editor"},
        id="update",
    ),
    pytest.param("DELETE", "/api/v1/projects/{project}", None, 204, {"owner"}, id="delete"),
    pytest.param(
        "GET",
        "/api/v1/projects/{project}/membership",
        None,
        200,
        {"owner", "editor", "viewer"},
        id="membership",
    ),
    pytest.param(
        "GET",
        "/api/v1/projects/{project}/members",
        None,
        200,
        {"owner", "editor", "viewer"},
        id="list-members",
    ),
    pytest.param(
        "POST",
        "/api/v1/projects/{project}/members",
        {"username": "newcomer", "role": "viewer"},
        201,
        {"owner"},
        id="add-member",
    ),
    pytest.param(
        "PATCH",
        "/api/v1/projects/{project}/members/{target}",
        {"role": "editor"},
        200,
        {"owner"},
        id="change-role",
    ),
    pytest.param(
        "DELETE",
        "/api/v1/projects/{project}/members/{target}",
        None,
        204,
        {"owner"},
        id="remove-member",
    ),
]


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


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "body", "success", "allowed"), ROUTES)
async def test_project_route_by_role(
    api, scene, stored_members, stored_project, role, method, path, body, success, allowed
):
    created, caller, target = await scene(role)
    members_before = stored_members(created["id"])

    response = await api.request(
        method, path.format(project=created["id"], target=target.id), caller, json=body
    )

    if role in allowed:
        assert response.status == success, await response.text()
        return
    if role == "stranger":
        problem = await assert_problem(response, 404, "project_not_found")
        assert "Secret tunnel" not in str(problem)
    else:
        await assert_problem(response, 403, "forbidden")
    assert stored_project(created["id"]) == {"name": "Secret tunnel", "description": ""}
    assert stored_members(created["id"]) == members_before
