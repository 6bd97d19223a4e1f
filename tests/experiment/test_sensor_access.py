"""Sensors: who may do what, and what bad requests leave behind."""

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from backend_common.keys import SETTINGS
from tests.experiment.sensor_kit import (
    LINEAR,
    SENSORS,
    add_project,
    create_sensor,
    sensor_body,
    sensor_state,
    sensor_url,
)
from tests.problems import assert_problem
from tests.tokens import SigningKey

# --- who may do what -----------------------------------------------------------------------------


@dataclass
class World:
    """A sensor of `home` (made by its owner, with an active profile) shared with `shared`;
    `target` is a project it is not in yet."""

    home: uuid.UUID
    shared: uuid.UUID
    target: uuid.UUID
    sensor: dict[str, Any]


@pytest.fixture
async def world(client, owner, project_id, auth_stub) -> World:
    shared_project, target = uuid.uuid4(), uuid.uuid4()
    auth_stub.grant(owner, shared_project, "editor")
    sensor = await create_sensor(client, owner, project_id, conversion_profile=LINEAR)
    await add_project(client, owner, sensor["id"], shared_project)
    return World(home=project_id, shared=shared_project, target=target, sensor=sensor)


def route_request(route: str, world: World, *, list_project: Any = None) -> tuple:
    """(method, path, json body, query) of one sensor route against the world's sensor."""
    url = sensor_url(world.sensor["id"])
    profile = f"{url}/conversion-profiles/{world.sensor['active_profile_id']}"
    return {
        "create": ("POST", SENSORS, sensor_body(world.home), None),
        "list": ("GET", SENSORS, None, {"project_id": str(list_project or world.home)}),
        "get": ("GET", url, None, None),
        "patch": ("PATCH", url, {"description": "changed"}, None),
        "delete": ("DELETE", url, None, None),
        "rotate": ("POST", url + "/rotate-token", {"grace_seconds": 60}, None),
        "revoke": ("POST", url + "/revoke-token", None, None),
        "list_projects": ("GET", url + "/projects", None, None),
        "ingest_errors": ("GET", url + "/ingest-errors", None, None),
        "add_project": ("POST", url + "/projects", {"project_id": str(world.target)}, None),
        "remove_project": ("DELETE", f"{url}/projects/{world.shared}", None, None),
        "list_profiles": ("GET", url + "/conversion-profiles", None, None),
        "get_profile": ("GET", profile, None, None),
        "create_profile": (
            "POST",
            url + "/conversion-profiles",
            {**LINEAR, "version": "v2"},
            None,
        ),
        "schedule_profile": (
            "POST",
            profile + "/schedule",
            {"valid_from": "2099-01-01T00:00:00Z"},
            None,
        ),
        "publish_profile": ("POST", profile + "/publish", None, None),
        "deprecate_profile": ("POST", profile + "/deprecate", None, None),
    }[route]


# route -> (minimum role in the home project, status on success, what the success changes)
HOME_ROUTES = {
    "create": ("editor", 201, "sensor_count"),
    "list": ("viewer", 200, None),
    "get": ("viewer", 200, None),
    "patch": ("editor", 200, "sensor"),
    "delete": ("owner", 204, "sensor"),
    "rotate": ("owner", 200, "tokens"),
    "revoke": ("owner", 200, "tokens"),
    "list_projects": ("viewer", 200, None),
    "ingest_errors": ("viewer", 200, None),
    "add_project": ("owner", 201, "projects"),
    "remove_project": ("owner", 204, "projects"),
    "list_profiles": ("viewer", 200, None),
    "get_profile": ("viewer", 200, None),
    "create_profile": ("editor", 201, "profiles"),
}
RANK = {"viewer": 0, "editor": 1, "owner": 2}
SENSOR_ROUTES = [route for route in HOME_ROUTES if route not in ("create", "list")] + [
    "schedule_profile",
    "publish_profile",
    "deprecate_profile",
]


async def call(client, route: str, world: World, headers: dict[str, str], **kwargs: Any):
    method, path, body, params = route_request(route, world, **kwargs)
    return await client.request(method, path, json=body, params=params, headers=headers)


async def check_outcome(response, pgsql, world: World, before: dict, success: int, effect):
    assert response.status == success, await response.text()
    after = sensor_state(pgsql, world.sensor["id"])
    if effect is None:
        assert after == before
        if response.status == 200 and response.method == "GET":
            assert '"token"' not in await response.text()
        return
    assert after[effect] != before[effect]
    assert after["audit_count"] == before["audit_count"] + 1


@pytest.mark.parametrize("route", list(HOME_ROUTES))
@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
async def test_sensor_route_by_home_role_answers_per_rbac(
    client, auth_stub, pgsql, world, role, route
):
    user = auth_stub.member(world.home, role)
    auth_stub.grant(user, world.target, "editor")
    before = sensor_state(pgsql, world.sensor["id"])

    response = await call(client, route, world, user.headers)

    minimum, success, effect = HOME_ROUTES[route]
    if RANK[role] < RANK[minimum]:
        await assert_problem(response, 403, "forbidden")
        assert sensor_state(pgsql, world.sensor["id"]) == before
    else:
        await check_outcome(response, pgsql, world, before, success, effect)


# route -> status for a member of the shared project only, by role there
SHARED_ROUTES = {
    "list": {"viewer": 200, "editor": 200, "owner": 200},
    "get": {"viewer": 200, "editor": 200, "owner": 200},
    "list_projects": {"viewer": 200, "editor": 200, "owner": 200},
    "ingest_errors": {"viewer": 200, "editor": 200, "owner": 200},
    "list_profiles": {"viewer": 200, "editor": 200, "owner": 200},
    "get_profile": {"viewer": 200, "editor": 200, "owner": 200},
    "patch": {"viewer": 403, "editor": 403, "owner": 403},
    "delete": {"viewer": 403, "editor": 403, "owner": 403},
    "rotate": {"viewer": 403, "editor": 403, "owner": 403},
    "revoke": {"viewer": 403, "editor": 403, "owner": 403},
    "add_project": {"viewer": 403, "editor": 403, "owner": 403},
    "create_profile": {"viewer": 403, "editor": 403, "owner": 403},
    "publish_profile": {"viewer": 403, "editor": 403, "owner": 403},
    "deprecate_profile": {"viewer": 403, "editor": 403, "owner": 403},
    "remove_project": {"viewer": 403, "editor": 403, "owner": 204},
}


@pytest.mark.parametrize("route", list(SHARED_ROUTES))
@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
async def test_sensor_route_by_role_in_a_shared_project_only_answers_per_rbac(
    client, auth_stub, pgsql, world, role, route
):
    user = auth_stub.member(world.shared, role)
    auth_stub.grant(user, world.target, "owner")
    before = sensor_state(pgsql, world.sensor["id"])

    response = await call(client, route, world, user.headers, list_project=world.shared)

    expected = SHARED_ROUTES[route][role]
    if expected == 403:
        await assert_problem(response, 403, "forbidden")
        assert sensor_state(pgsql, world.sensor["id"]) == before
    else:
        effect = "projects" if route == "remove_project" else None
        await check_outcome(response, pgsql, world, before, expected, effect)
    if route == "list":
        assert world.sensor["id"] in {item["id"] for item in (await response.json())["items"]}


@pytest.mark.parametrize("route", SENSOR_ROUTES)
async def test_sensor_route_for_a_user_of_another_project_is_not_found(
    client, auth_stub, pgsql, world, route
):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    auth_stub.grant(stranger, world.target, "owner")
    before = sensor_state(pgsql, world.sensor["id"])

    response = await call(client, route, world, stranger.headers)

    problem = await assert_problem(response, 404, "sensor_not_found")
    assert world.sensor["name"] not in str(problem)
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", ["create", "list"])
async def test_project_route_for_a_user_of_another_project_is_not_found(
    client, auth_stub, pgsql, world, route
):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    before = sensor_state(pgsql, world.sensor["id"])

    response = await call(client, route, world, stranger.headers)

    await assert_problem(response, 404, "not_found")
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", SENSOR_ROUTES)
async def test_sensor_route_for_an_unknown_sensor_is_not_found(client, owner, world, route):
    unknown = World(
        home=world.home,
        shared=world.shared,
        target=world.target,
        sensor={**world.sensor, "id": str(uuid.uuid4())},
    )

    response = await call(client, route, unknown, owner.headers)

    await assert_problem(response, 404, "sensor_not_found")


# --- bad requests --------------------------------------------------------------------------------

WRITING_ROUTES = ["create", "patch", "rotate", "revoke", "add_project"]
WRONG_TYPES = {
    "create": ({"name": 5}, "name"),
    "patch": ({"name": ["a"]}, "name"),
    "rotate": ({"grace_seconds": "soon"}, "grace_seconds"),
    "add_project": ({"project_id": 5}, "project_id"),
}


def with_body(route: str, world: World, body: dict[str, Any]) -> dict[str, Any]:
    """The route's valid body with `body` laid over it."""
    _, _, valid, _ = route_request(route, world)
    return {**(valid or {}), **body}


@pytest.mark.parametrize("route", WRITING_ROUTES)
async def test_writing_route_with_malformed_json_is_a_bad_request(
    client, owner, auth_stub, pgsql, world, route
):
    auth_stub.grant(owner, world.target, "editor")
    method, path, _, _ = route_request(route, world)
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method,
        path,
        data=b'{"name": "half',
        headers={**owner.headers, "Content-Type": "application/json"},
    )

    await assert_problem(response, 400, "malformed_json")
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", WRITING_ROUTES)
async def test_writing_route_with_another_media_type_is_refused(
    client, owner, auth_stub, pgsql, world, route
):
    method, path, _, _ = route_request(route, world)
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method, path, data=b"name=x", headers={**owner.headers, "Content-Type": "text/plain"}
    )

    await assert_problem(response, 415, "unsupported_media_type")
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", list(WRONG_TYPES))
async def test_writing_route_with_a_wrong_type_names_the_field(
    client, owner, auth_stub, pgsql, world, route
):
    auth_stub.grant(owner, world.target, "editor")
    method, path, _, _ = route_request(route, world)
    body, field = WRONG_TYPES[route]
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method, path, json=with_body(route, world, body), headers=owner.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == [field], problem
    assert all(error["in"] == "body" for error in problem["errors"])
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", WRITING_ROUTES)
async def test_writing_route_with_an_unknown_field_names_it(
    client, owner, auth_stub, pgsql, world, route
):
    auth_stub.grant(owner, world.target, "editor")
    method, path, _, _ = route_request(route, world)
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method, path, json=with_body(route, world, {"colour": "red"}), headers=owner.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["colour"], problem
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", WRITING_ROUTES)
async def test_writing_route_with_a_non_object_body_is_refused(client, owner, pgsql, world, route):
    method, path, _, _ = route_request(route, world)
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method, path, json=["not", "an", "object"], headers=owner.headers
    )

    await assert_problem(response, 422, "validation_failed")
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", WRITING_ROUTES)
async def test_writing_route_with_a_body_over_the_limit_is_too_large(
    client, owner, auth_stub, pgsql, world, route
):
    auth_stub.grant(owner, world.target, "editor")
    method, path, _, _ = route_request(route, world)
    limit = client.app[SETTINGS].max_body_bytes
    body = b'{"description": "' + b"d" * limit + b'"}'
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method, path, data=body, headers={**owner.headers, "Content-Type": "application/json"}
    )

    await assert_problem(response, 413, "payload_too_large")
    assert sensor_state(pgsql, world.sensor["id"]) == before


def bearer_headers(kind: str, user, key: SigningKey) -> dict[str, str]:
    if kind == "missing":
        return {}
    if kind == "not_bearer":
        return {"Authorization": f"Basic {user.token}"}
    if kind == "forged":
        forger = SigningKey.generate(kid=key.kid)
        return {"Authorization": f"Bearer {forger.mint(str(user.id))}"}
    assert kind == "expired"
    return {"Authorization": f"Bearer {key.mint(str(user.id), ttl=-100)}"}


@pytest.mark.parametrize("kind", ["missing", "not_bearer", "forged", "expired"])
@pytest.mark.parametrize("route", ["create", "list", *SENSOR_ROUTES])
async def test_sensor_route_without_a_valid_bearer_is_unauthorized(
    client, owner, auth_signing_key, pgsql, world, route, kind
):
    before = sensor_state(pgsql, world.sensor["id"])

    response = await call(client, route, world, bearer_headers(kind, owner, auth_signing_key))

    problem = await assert_problem(response, 401, "unauthorized")
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert world.sensor["name"] not in str(problem)
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate-token"),
        ("POST", "/revoke-token"),
        ("GET", "/projects"),
        ("GET", "/ingest-errors"),
        ("POST", "/projects"),
        ("DELETE", "/projects/{project}"),
        ("GET", "/conversion-profiles"),
        ("POST", "/conversion-profiles"),
    ],
)
@pytest.mark.parametrize("bad", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
async def test_sensor_route_with_a_bad_uuid_in_the_path_is_not_found(
    client, owner, pgsql, world, method, suffix, bad
):
    path = f"{SENSORS}/{bad}{suffix}".replace("{project}", str(world.shared))
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(method, path, json={"name": "x"}, headers=owner.headers)

    await assert_problem(response, 404, "not_found")
    assert sensor_state(pgsql, world.sensor["id"]) == before


async def test_remove_project_with_a_bad_project_uuid_is_not_found(client, owner, pgsql, world):
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.delete(
        sensor_url(world.sensor["id"]) + "/projects/not-a-uuid", headers=owner.headers
    )

    await assert_problem(response, 404, "not_found")
    assert sensor_state(pgsql, world.sensor["id"]) == before


async def test_list_projects_with_an_unknown_parameter_names_it(client, owner, world):
    response = await client.get(
        sensor_url(world.sensor["id"]) + "/projects", params={"limit": "1"}, headers=owner.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["limit"]
