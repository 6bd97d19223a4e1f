"""Experiments over HTTP: who may do what, bad input and tokens."""

import uuid
from types import SimpleNamespace

import pytest

from tests.experiment.factories import (
    audit_count,
    create_experiment,
)
from tests.plugins.roles import role_matrix
from tests.problems import assert_problem
from tests.tokens import SigningKey


def _experiment_row(pgsql, experiment_id):
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT name, status, tags, metadata, owner_id FROM experiments WHERE id = %s",
            (str(experiment_id),),
        )
        row = cursor.fetchone()
    return dict(row) if row else None


# --- RBAC -----------------------------------------------------------------------------------

# route -> answer per role: a status for success, (status, code) for a problem.
FORBIDDEN = (403, "forbidden")
NO_EXPERIMENT = (404, "experiment_not_found")
NO_PROJECT = (404, "not_found")
MATRIX = {
    "get_experiment": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_EXPERIMENT},
    "list_experiments": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_PROJECT},
    "create_experiment": {"owner": 201, "editor": 201, "viewer": FORBIDDEN, "stranger": NO_PROJECT},
    "update_experiment": {
        "owner": 200,
        "editor": 200,
        "viewer": FORBIDDEN,
        "stranger": NO_EXPERIMENT,
    },
    "archive_experiment": {
        "owner": 200,
        "editor": 200,
        "viewer": FORBIDDEN,
        "stranger": NO_EXPERIMENT,
    },
    "delete_experiment": {
        "owner": 204,
        "editor": FORBIDDEN,
        "viewer": FORBIDDEN,
        "stranger": NO_EXPERIMENT,
    },
    "create_run": {"owner": 201, "editor": 201, "viewer": FORBIDDEN, "stranger": NO_EXPERIMENT},
}
WRITES = {
    "create_experiment",
    "update_experiment",
    "archive_experiment",
    "delete_experiment",
    "create_run",
}


def _route_request(route, world):
    experiment_id = world.experiment["id"]
    path = f"/api/v1/experiments/{experiment_id}"
    return {
        "get_experiment": ("GET", path, None, None),
        "list_experiments": ("GET", "/api/v1/experiments", None, {"project_id": world.project}),
        "create_experiment": (
            "POST",
            "/api/v1/experiments",
            {"project_id": world.project, "name": "another"},
            None,
        ),
        "update_experiment": ("PATCH", path, {"name": "renamed"}, None),
        "archive_experiment": ("PATCH", path, {"status": "archived"}, None),
        "delete_experiment": ("DELETE", path, None, None),
        "create_run": ("POST", f"{path}/runs", {"name": "a run"}, None),
    }[route]


@pytest.fixture
async def world(client, auth_stub):
    project_id = uuid.uuid4()
    author = auth_stub.member(project_id, "editor")
    experiment = await create_experiment(
        client, author, project_id, name="Secret rig", metadata={"secret": "s3cr3t"}
    )
    return SimpleNamespace(project=str(project_id), author=author, experiment=experiment)


@role_matrix(MATRIX)
async def test_call_experiment_route_as_role_answers_per_matrix(
    client, caller_as, pgsql, world, route, role, expected
):
    user = caller_as(role, uuid.UUID(world.project))
    method, path, body, params = _route_request(route, world)
    audited = audit_count(pgsql)

    response = await client.request(method, path, json=body, params=params, headers=user.headers)

    if isinstance(expected, int):
        assert response.status == expected, await response.text()
        assert audit_count(pgsql) == audited + (1 if route in WRITES else 0)
        return
    problem = await assert_problem(response, *expected)
    text = str(problem)
    assert world.experiment["id"] not in text
    assert "Secret rig" not in text
    assert "s3cr3t" not in text
    assert audit_count(pgsql) == audited
    row = _experiment_row(pgsql, world.experiment["id"])
    assert (row["name"], row["status"]) == ("Secret rig", "draft")


async def test_get_experiment_of_other_project_returns_404(client, auth_stub, world):
    outsider = auth_stub.member(uuid.uuid4(), "owner")

    response = await client.get(
        f"/api/v1/experiments/{world.experiment['id']}", headers=outsider.headers
    )

    await assert_problem(response, 404, "experiment_not_found")


async def test_list_experiments_of_project_not_a_member_of_returns_404(client, auth_stub, world):
    outsider = auth_stub.member(uuid.uuid4(), "owner")

    response = await client.get(
        "/api/v1/experiments", params={"project_id": world.project}, headers=outsider.headers
    )

    body = await assert_problem(response, 404, "not_found")
    assert "items" not in body


async def test_update_experiment_after_role_revoked_returns_404(client, auth_stub, world):
    auth_stub.grant(world.author, uuid.UUID(world.project), None)

    response = await client.patch(
        f"/api/v1/experiments/{world.experiment['id']}",
        json={"name": "x"},
        headers=world.author.headers,
    )

    await assert_problem(response, 404, "experiment_not_found")


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "n" * 201}, "name"),
        ({"name": ""}, "name"),
        ({"description": "d" * 10001}, "description"),
        ({"tags": [f"t{i}" for i in range(51)]}, "tags"),
        ({"tags": ["t" * 65]}, "tags.0"),
        ({"tags": ["has space"]}, "tags.0"),
        ({"experiment_type": "t" * 101}, "experiment_type"),
        ({"name": 5}, "name"),
        ({"name": True}, "name"),
        ({"tags": "aero"}, "tags"),
        ({"tags": ["ok", 1]}, "tags.1"),
        ({"metadata": []}, "metadata"),
        ({"metadata": "x"}, "metadata"),
        ({"project_id": "not-a-uuid"}, "project_id"),
        ({"project_id": 12}, "project_id"),
        ({"owner_id": str(uuid.uuid4())}, "owner_id"),
        ({"status": "running"}, "status"),
        ({"surprise": 1}, "surprise"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_create_experiment_invalid_field_returns_422_and_stores_nothing(
    client, editor, project_id, pgsql, overrides, field
):
    body = {"project_id": str(project_id), "name": "ok", **overrides}

    response = await client.post("/api/v1/experiments", json=body, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem
    assert all(error["in"] == "body" for error in problem["errors"])
    assert audit_count(pgsql) == 0


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null"])
async def test_create_experiment_body_not_an_object_returns_422(client, editor, raw):
    response = await client.post(
        "/api/v1/experiments",
        data=raw,
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await assert_problem(response, 422, "validation_failed")


@pytest.mark.parametrize(
    "raw", [b"", b"{", b'{"name": }', b"{'name': 'x'}", b'{"a": 1}{"b": 2}', b"\xff\xfe"]
)
async def test_create_experiment_malformed_json_returns_400(client, editor, raw):
    response = await client.post(
        "/api/v1/experiments",
        data=raw,
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await assert_problem(response, 400, "malformed_json")


async def test_create_experiment_not_json_content_type_returns_415(client, editor, project_id):
    response = await client.post(
        "/api/v1/experiments",
        data=f'{{"project_id": "{project_id}", "name": "x"}}',
        headers={**editor.headers, "Content-Type": "text/plain"},
    )

    await assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "a\x00b"},
        {"description": "\x00"},
        {"tags": ["ok", "b\x00d"]},
        {"metadata": {"nested": {"deep": ["x\x00"]}}},
        {"metadata": {"key\x00": 1}},
    ],
    ids=["name", "description", "tag", "metadata_value", "metadata_key"],
)
async def test_create_experiment_with_nul_character_returns_422(
    client, editor, project_id, pgsql, overrides
):
    body = {"project_id": str(project_id), "name": "ok", **overrides}

    response = await client.post("/api/v1/experiments", json=body, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["type"] == "string_nul"
    assert audit_count(pgsql) == 0


async def test_update_experiment_with_nul_character_returns_422(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)

    response = await client.patch(
        f"/api/v1/experiments/{experiment['id']}", json={"name": "\x00"}, headers=editor.headers
    )

    await assert_problem(response, 422, "validation_failed")


def _nested(depth):
    return ('{"a":' * depth) + "1" + ("}" * depth)


@pytest.mark.parametrize("depth", [63, 64, 300, 1000])
async def test_create_experiment_with_deeply_nested_metadata_returns_422_not_500(
    client, editor, project_id, pgsql, depth
):
    body = f'{{"project_id": "{project_id}", "name": "x", "metadata": {_nested(depth)}}}'

    response = await client.post(
        "/api/v1/experiments",
        data=body.encode(),
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    if depth < 64:  # the body object itself is the first of the 64 levels allowed
        assert response.status == 201, await response.text()
        return
    problem = await assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["type"] == "json_too_deep"
    assert audit_count(pgsql) == 0


async def test_create_experiment_huge_body_returns_413(client, editor, project_id, pgsql):
    body = f'{{"project_id": "{project_id}", "name": "x", "description": "{"d" * 1_100_000}"}}'

    response = await client.post(
        "/api/v1/experiments",
        data=body.encode(),
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await assert_problem(response, 413, "payload_too_large")
    assert audit_count(pgsql) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/experiments/not-a-uuid"),
        ("PATCH", "/api/v1/experiments/123"),
        ("DELETE", "/api/v1/experiments/00000000-0000-0000-0000-00000000000g"),
        ("POST", "/api/v1/experiments/not-a-uuid/runs"),
    ],
)
async def test_call_experiment_route_with_invalid_uuid_in_path_returns_404(
    client, editor, method, path
):
    response = await client.request(method, path, json={"name": "x"}, headers=editor.headers)

    await assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"project_id": "not-a-uuid"}, "project_id"),
        ({"project_id": "PROJECT", "limit": "5"}, "project_id"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"status": "done"}, "status.0"),
        ({"unknown": "1"}, "unknown"),
        ({"q": "a\x00b"}, "q"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_list_experiments_invalid_query_returns_422(
    client, editor, project_id, params, field
):
    query = {"project_id": str(project_id), **params}

    response = await client.get("/api/v1/experiments", params=query, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem
    assert all(error["in"] == "query" for error in problem["errors"])


# --- tokens ---------------------------------------------------------------------------------


def _token_headers(kind, user, auth_signing_key):
    if kind == "missing":
        return {}
    if kind == "not_bearer":
        return {"Authorization": f"Basic {user.token}"}
    if kind == "malformed":
        return {"Authorization": "Bearer not.a.jwt"}
    if kind == "forged":
        forger = SigningKey.generate(kid=auth_signing_key.kid)
        return {"Authorization": f"Bearer {forger.mint(str(user.id))}"}
    assert kind == "expired"
    return {"Authorization": f"Bearer {auth_signing_key.mint(str(user.id), ttl=-100)}"}


@pytest.mark.parametrize("kind", ["missing", "not_bearer", "malformed", "forged", "expired"])
@pytest.mark.parametrize("route", sorted(MATRIX))
async def test_call_experiment_route_without_valid_token_returns_401(
    client, auth_stub, auth_signing_key, pgsql, world, route, kind
):
    owner = auth_stub.member(uuid.UUID(world.project), "owner")
    method, path, body, params = _route_request(route, world)
    audited = audit_count(pgsql)

    response = await client.request(
        method,
        path,
        json=body,
        params=params,
        headers=_token_headers(kind, owner, auth_signing_key),
    )

    await assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert audit_count(pgsql) == audited
    assert _experiment_row(pgsql, world.experiment["id"])["name"] == "Secret rig"
