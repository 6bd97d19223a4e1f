"""Runs over HTTP: who may do what, bad input and tokens."""

import uuid
from types import SimpleNamespace

import pytest

from tests.experiment.factories import (
    audit_count,
    create_experiment,
    create_run,
)
from tests.plugins.roles import role_matrix
from tests.problems import assert_problem
from tests.tokens import SigningKey


@pytest.fixture
async def experiment(client, editor, project_id):
    return await create_experiment(client, editor, project_id)


def _run_row(pgsql, run_id):
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT name, status, params, env, metadata, tags, notes, git_sha, started_at,"
            " finished_at, duration_seconds FROM runs WHERE id = %s",
            (str(run_id),),
        )
        row = cursor.fetchone()
    return dict(row) if row else None


# --- RBAC -----------------------------------------------------------------------------------

# route -> answer per role: a status for success, (status, code) for a problem.
FORBIDDEN = (403, "forbidden")
NO_RUN = (404, "run_not_found")
MATRIX = {
    "get_run": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_RUN},
    "list_runs_of_experiment": {
        "owner": 200,
        "editor": 200,
        "viewer": 200,
        "stranger": (404, "experiment_not_found"),
    },
    "list_runs_of_project": {
        "owner": 200,
        "editor": 200,
        "viewer": 200,
        "stranger": (404, "not_found"),
    },
    "list_run_events": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_RUN},
    "update_run": {"owner": 200, "editor": 200, "viewer": FORBIDDEN, "stranger": NO_RUN},
    "start_run": {"owner": 200, "editor": 200, "viewer": FORBIDDEN, "stranger": NO_RUN},
    "delete_run": {"owner": 204, "editor": FORBIDDEN, "viewer": FORBIDDEN, "stranger": NO_RUN},
}
WRITES = {"update_run", "start_run", "delete_run"}


def _route_request(route, world):
    path = f"/api/v1/runs/{world.run['id']}"
    return {
        "get_run": ("GET", path, None, None),
        "list_runs_of_experiment": (
            "GET",
            "/api/v1/runs",
            None,
            {"experiment_id": world.run["experiment_id"]},
        ),
        "list_runs_of_project": ("GET", "/api/v1/runs", None, {"project_id": world.project}),
        "list_run_events": ("GET", f"{path}/events", None, None),
        "update_run": ("PATCH", path, {"notes": "changed"}, None),
        "start_run": ("PATCH", path, {"status": "running"}, None),
        "delete_run": ("DELETE", path, None, None),
    }[route]


@pytest.fixture
async def world(client, auth_stub):
    project_id = uuid.uuid4()
    author = auth_stub.member(project_id, "editor")
    experiment = await create_experiment(client, author, project_id)
    run = await create_run(
        client, author, experiment["id"], name="Secret run", params={"secret": "s3cr3t"}
    )
    return SimpleNamespace(project=str(project_id), author=author, run=run)


@role_matrix(MATRIX)
async def test_call_run_route_as_role_answers_per_matrix(
    client, caller_as, pgsql, world, route, role, expected
):
    user = caller_as(role, uuid.UUID(world.project))
    method, path, body, params = _route_request(route, world)
    audited = audit_count(pgsql)

    response = await client.request(method, path, json=body, params=params, headers=user.headers)

    if isinstance(expected, int):
        assert response.status == expected, await response.text()
        assert audit_count(pgsql) == audited + (1 if route in WRITES else 0)
        if route.startswith("list_runs"):
            assert [item["id"] for item in (await response.json())["items"]] == [world.run["id"]]
        return
    problem = await assert_problem(response, *expected)
    text = str(problem)
    assert world.run["id"] not in text
    assert "Secret run" not in text
    assert "s3cr3t" not in text
    assert audit_count(pgsql) == audited
    row = _run_row(pgsql, world.run["id"])
    assert (row["notes"], row["status"]) == ("", "draft")


async def test_get_run_of_other_project_by_id_returns_404(client, auth_stub, world):
    outsider = auth_stub.member(uuid.uuid4(), "owner")

    response = await client.get(f"/api/v1/runs/{world.run['id']}", headers=outsider.headers)

    await assert_problem(response, 404, "run_not_found")


async def test_list_runs_of_project_not_a_member_of_returns_404(client, auth_stub, world):
    outsider = auth_stub.member(uuid.uuid4(), "owner")

    response = await client.get(
        "/api/v1/runs", params={"project_id": world.project}, headers=outsider.headers
    )

    await assert_problem(response, 404, "not_found")


async def test_list_runs_with_own_project_and_other_projects_experiment_returns_404(
    client, auth_stub, world
):
    own_project = uuid.uuid4()
    outsider = auth_stub.member(own_project, "owner")

    response = await client.get(
        "/api/v1/runs",
        params={"project_id": str(own_project), "experiment_id": world.run["experiment_id"]},
        headers=outsider.headers,
    )

    await assert_problem(response, 404, "experiment_not_found")


async def test_create_run_in_other_projects_experiment_returns_404(client, auth_stub, world):
    outsider = auth_stub.member(uuid.uuid4(), "owner")

    response = await client.post(
        f"/api/v1/experiments/{world.run['experiment_id']}/runs",
        json={"name": "intruder"},
        headers=outsider.headers,
    )

    await assert_problem(response, 404, "experiment_not_found")


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "n" * 201}, "name"),
        ({"name": ""}, "name"),
        ({"notes": "n" * 10001}, "notes"),
        ({"tags": [f"t{i}" for i in range(51)]}, "tags"),
        ({"tags": [""]}, "tags.0"),
        ({"name": 1}, "name"),
        ({"params": [1, 2]}, "params"),
        ({"params": "lr=0.1"}, "params"),
        ({"env": 3}, "env"),
        ({"metadata": True}, "metadata"),
        ({"tags": {"a": 1}}, "tags"),
        ({"notes": ["x"]}, "notes"),
        ({"surprise": 1}, "surprise"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_create_run_invalid_field_returns_422(
    client, editor, experiment, pgsql, overrides, field
):
    response = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs",
        json={"name": "ok", **overrides},
        headers=editor.headers,
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs")
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "n" * 201}, "name"),
        ({"notes": "n" * 10001}, "notes"),
        ({"tags": ["t"] * 51}, "tags"),
        ({"params": 1}, "params"),
        ({"status": "done"}, "status"),
        ({"status": 1}, "status"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_update_run_invalid_field_returns_422(client, editor, experiment, overrides, field):
    run = await create_run(client, editor, experiment["id"])

    response = await client.patch(
        f"/api/v1/runs/{run['id']}", json=overrides, headers=editor.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "a\x00"},
        {"notes": "x\x00y"},
        {"params": {"k": "v\x00"}},
        {"env": {"K\x00": "v"}},
        {"metadata": {"list": ["\x00"]}},
    ],
    ids=["name", "notes", "params", "env_key", "metadata"],
)
async def test_create_run_with_nul_character_returns_422(
    client, editor, experiment, pgsql, overrides
):
    response = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs",
        json={"name": "ok", **overrides},
        headers=editor.headers,
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["type"] == "string_nul"


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_write_run_with_deeply_nested_params_returns_422_not_500(
    client, editor, experiment, pgsql, method
):
    run = await create_run(client, editor, experiment["id"])
    nested = ('{"a":' * 300) + "1" + ("}" * 300)
    path = (
        f"/api/v1/experiments/{experiment['id']}/runs"
        if method == "POST"
        else f"/api/v1/runs/{run['id']}"
    )

    response = await client.request(
        method,
        path,
        data=f'{{"name": "deep", "params": {nested}}}'.encode(),
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["type"] == "json_too_deep"
    assert _run_row(pgsql, run["id"])["params"] == {}


async def test_update_run_malformed_json_returns_400(client, editor, experiment):
    run = await create_run(client, editor, experiment["id"])

    response = await client.patch(
        f"/api/v1/runs/{run['id']}",
        data=b'{"notes": "unterminated}',
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await assert_problem(response, 400, "malformed_json")


async def test_create_run_malformed_json_returns_400(client, editor, experiment):
    response = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs",
        data=b'{"name": "r",}',
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await assert_problem(response, 400, "malformed_json")


async def test_update_run_huge_body_returns_413(client, editor, experiment, pgsql):
    run = await create_run(client, editor, experiment["id"])
    body = b'{"params": {"blob": "' + b"x" * 1_100_000 + b'"}}'

    response = await client.patch(
        f"/api/v1/runs/{run['id']}",
        data=body,
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await assert_problem(response, 413, "payload_too_large")
    assert _run_row(pgsql, run["id"])["params"] == {}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/runs/not-a-uuid"),
        ("PATCH", "/api/v1/runs/1234"),
        ("DELETE", "/api/v1/runs/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"),
        ("GET", "/api/v1/runs/not-a-uuid/events"),
    ],
)
async def test_call_run_route_with_invalid_uuid_in_path_returns_404(client, editor, method, path):
    response = await client.request(method, path, json={"notes": "x"}, headers=editor.headers)

    await assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"experiment_id": "not-a-uuid"}, "experiment_id"),
        ({"project_id": "not-a-uuid"}, "project_id"),
        ({}, ""),
        ({"project_id": "{PROJECT}", "status": "done"}, "status.0"),
        ({"project_id": "{PROJECT}", "limit": "-1"}, "limit"),
        ({"project_id": "{PROJECT}", "git_sha": "XYZ"}, "git_sha"),
        ({"project_id": "{PROJECT}", "created_after": "yesterday"}, "created_after"),
        ({"project_id": "{PROJECT}", "sort": "id"}, "sort"),
        ({"project_id": "{PROJECT}", "extra": "1"}, "extra"),
        ({"project_id": "{PROJECT}", "q": "\x00"}, "q"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_list_runs_invalid_query_returns_422(client, editor, project_id, params, field):
    query = {k: v.replace("{PROJECT}", str(project_id)) for k, v in params.items()}

    response = await client.get("/api/v1/runs", params=query, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem
    assert all(error["in"] == "query" for error in problem["errors"])


# --- tokens ---------------------------------------------------------------------------------


def _token_headers(kind, user, auth_signing_key):
    if kind == "missing":
        return {}
    if kind == "forged":
        forger = SigningKey.generate(kid=auth_signing_key.kid)
        return {"Authorization": f"Bearer {forger.mint(str(user.id))}"}
    assert kind == "expired"
    return {"Authorization": f"Bearer {auth_signing_key.mint(str(user.id), ttl=-100)}"}


@pytest.mark.parametrize("kind", ["missing", "forged", "expired"])
@pytest.mark.parametrize("route", sorted(MATRIX))
async def test_call_run_route_without_valid_token_returns_401(
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

    problem = await assert_problem(response, 401, "unauthorized")
    assert "Secret run" not in str(problem)
    assert audit_count(pgsql) == audited
    assert _run_row(pgsql, world.run["id"])["status"] == "draft"
