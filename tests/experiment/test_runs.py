"""Runs over HTTP: create, read, change, delete, and the status machine with its capture rule."""

import uuid
from datetime import datetime

import pytest

from tests.experiment.factories import (
    RUN_STATUS_PATHS,
    audit_rows,
    create_experiment,
    create_run,
    create_run_in_status,
    set_run_status,
    start_capture,
)
from tests.problems import assert_problem

ALLOWED = {
    ("draft", "running"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("succeeded", "archived"),
    ("failed", "archived"),
}
REFUSED = sorted(
    (a, b) for a in RUN_STATUS_PATHS for b in RUN_STATUS_PATHS if (a, b) not in ALLOWED
)


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


def _instant(value):
    return None if value is None else datetime.fromisoformat(value)


# --- create, get, patch, delete ------------------------------------------------------------


async def test_create_run_with_name_only_returns_201_with_defaults_and_audit(
    client, editor, project_id, experiment, pgsql
):
    response = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs",
        json={"name": "baseline"},
        headers={**editor.headers, "X-Request-Id": "req-run-1"},
    )

    assert response.status == 201, await response.text()
    run = await response.json()
    assert response.headers["Location"] == f"/api/v1/runs/{run['id']}"
    assert run["experiment_id"] == experiment["id"]
    assert run["project_id"] == str(project_id)
    assert run["created_by"] == str(editor.id)
    assert run["name"] == "baseline"
    assert (run["params"], run["env"], run["metadata"]) == ({}, {}, {})
    assert (run["tags"], run["notes"], run["git_sha"]) == ([], "", None)
    assert run["status"] == "draft"
    assert (run["started_at"], run["finished_at"], run["duration_seconds"]) == (None, None, None)
    [entry] = audit_rows(pgsql, run["id"])
    assert entry["action"] == "run.created"
    assert entry["entity_type"] == "run"
    assert entry["parent_id"] == experiment["id"]
    assert entry["actor_id"] == str(editor.id)
    assert entry["actor_role"] == "editor"
    assert entry["request_id"] == "req-run-1"
    assert entry["after"]["name"] == "baseline"


async def test_create_run_with_json_objects_stores_them_as_given(client, editor, experiment, pgsql):
    params = {
        "lr": 0.001,
        "layers": [64, 128, {"dropout": 0.5}],
        "big": 2**62,
        "neg": -17,
        "flag": False,
        "nothing": None,
        "text": 'Ünïcode ✓ "quoted" \\ back',
        "empty": {},
        "nested": {"a": {"b": {"c": [[], [1.5e-7]]}}},
    }
    env = {"python": "3.11", "cuda": None, "PATH": "/usr/bin:/bin"}
    metadata = {"operator": "ana", "tags_like": ["x", "y"]}

    run = await create_run(
        client,
        editor,
        experiment["id"],
        params=params,
        env=env,
        metadata=metadata,
        git_sha="a" * 40,
        tags=["gpu", "v2"],
        notes="n" * 10000,
    )

    assert (run["params"], run["env"], run["metadata"]) == (params, env, metadata)
    fetched = await client.get(f"/api/v1/runs/{run['id']}", headers=editor.headers)
    assert await fetched.json() == run
    row = _run_row(pgsql, run["id"])
    assert (row["params"], row["env"], row["metadata"]) == (params, env, metadata)
    assert (row["git_sha"], row["tags"], row["notes"]) == ("a" * 40, ["gpu", "v2"], "n" * 10000)


@pytest.mark.parametrize("git_sha", ["abcdef1", "0123456789abcdef0123456789abcdef01234567", None])
async def test_create_run_with_valid_git_sha_stores_it(client, editor, experiment, git_sha):
    run = await create_run(client, editor, experiment["id"], git_sha=git_sha)

    assert run["git_sha"] == git_sha


@pytest.mark.parametrize(
    "git_sha",
    ["abcdef", "a" * 41, "ABCDEF1", "abcdefg", "abcdef1\n", " abcdef1", "", "abc-def1", 1234567],
    ids=repr,
)
async def test_create_run_with_invalid_git_sha_returns_422(
    client, editor, experiment, pgsql, git_sha
):
    response = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs",
        json={"name": "r", "git_sha": git_sha},
        headers=editor.headers,
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["git_sha"]
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs")
        assert cursor.fetchone()[0] == 0


async def test_create_run_in_unknown_experiment_returns_404(client, editor):
    response = await client.post(
        f"/api/v1/experiments/{uuid.uuid4()}/runs", json={"name": "r"}, headers=editor.headers
    )

    await assert_problem(response, 404, "experiment_not_found")


async def test_get_run_unknown_id_returns_404(client, editor):
    response = await client.get(f"/api/v1/runs/{uuid.uuid4()}", headers=editor.headers)

    await assert_problem(response, 404, "run_not_found")


async def test_update_run_fields_changes_them_and_audits_the_diff(
    client, editor, experiment, pgsql
):
    run = await create_run(client, editor, experiment["id"], name="old", git_sha="abcdef1")
    changes = {
        "name": "new",
        "params": {"lr": 0.2},
        "git_sha": "1234567",
        "env": {"os": "linux"},
        "tags": ["t1"],
        "notes": "went well",
        "metadata": {"m": 1},
    }

    response = await client.patch(f"/api/v1/runs/{run['id']}", json=changes, headers=editor.headers)

    assert response.status == 200, await response.text()
    body = await response.json()
    for field, value in changes.items():
        assert body[field] == value
    assert body["status"] == "draft"
    assert _instant(body["updated_at"]) > _instant(run["updated_at"])
    entry = audit_rows(pgsql, run["id"])[-1]
    assert entry["action"] == "run.updated"
    assert entry["parent_id"] == experiment["id"]
    assert entry["after"] == changes
    assert entry["before"] == {
        "name": "old",
        "params": {},
        "git_sha": "abcdef1",
        "env": {},
        "tags": [],
        "notes": "",
        "metadata": {},
    }


async def test_update_run_git_sha_to_null_clears_it(client, editor, experiment):
    run = await create_run(client, editor, experiment["id"], git_sha="abcdef1")

    response = await client.patch(
        f"/api/v1/runs/{run['id']}", json={"git_sha": None}, headers=editor.headers
    )

    assert response.status == 200
    assert (await response.json())["git_sha"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": None},
        {"params": None},
        {"tags": None},
        {"notes": None},
        {"status": None},
        {"params": [1]},
        {"started_at": "2024-01-01T00:00:00Z"},
        {"finished_at": "2024-01-01T00:00:00Z"},
        {"duration_seconds": 1.5},
        {"created_by": str(uuid.uuid4())},
        {"experiment_id": str(uuid.uuid4())},
        {"project_id": str(uuid.uuid4())},
        {"status": "running", "started_at": "2024-01-01T00:00:00Z"},
    ],
    ids=lambda body: ",".join(body) or "empty",
)
async def test_update_run_invalid_or_server_owned_field_returns_422(
    client, editor, experiment, pgsql, body
):
    run = await create_run(client, editor, experiment["id"], name="kept")

    response = await client.patch(f"/api/v1/runs/{run['id']}", json=body, headers=editor.headers)

    await assert_problem(response, 422, "validation_failed")
    row = _run_row(pgsql, run["id"])
    assert (row["name"], row["status"], row["started_at"]) == ("kept", "draft", None)
    assert len(audit_rows(pgsql, run["id"])) == 1


@pytest.mark.parametrize(
    "field",
    ["status", "started_at", "finished_at", "duration_seconds", "created_by", "project_id", "id"],
)
async def test_create_run_with_server_owned_field_returns_422(client, editor, experiment, field):
    value = {"status": "running", "duration_seconds": 3}.get(field, str(uuid.uuid4()))
    if field in ("started_at", "finished_at"):
        value = "2024-01-01T00:00:00Z"

    response = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs",
        json={"name": "r", field: value},
        headers=editor.headers,
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == [field]


async def test_delete_run_by_owner_removes_it_and_audits(
    client, auth_stub, editor, project_id, experiment, pgsql
):
    owner = auth_stub.member(project_id, "owner")
    run = await create_run_in_status(client, editor, experiment["id"], "running")

    response = await client.delete(f"/api/v1/runs/{run['id']}", headers=owner.headers)

    assert response.status == 204
    assert _run_row(pgsql, run["id"]) is None
    entry = audit_rows(pgsql, run["id"])[-1]
    assert entry["action"] == "run.deleted"
    assert entry["actor_role"] == "owner"
    assert entry["before"]["id"] == run["id"]
    again = await client.get(f"/api/v1/runs/{run['id']}", headers=owner.headers)
    await assert_problem(again, 404, "run_not_found")


async def test_delete_run_by_its_creator_with_editor_role_returns_403(
    client, editor, experiment, pgsql
):
    run = await create_run(client, editor, experiment["id"])

    response = await client.delete(f"/api/v1/runs/{run['id']}", headers=editor.headers)

    await assert_problem(response, 403, "forbidden")
    assert _run_row(pgsql, run["id"]) is not None


async def test_delete_run_with_running_capture_returns_409(
    client, auth_stub, editor, project_id, experiment, pgsql
):
    owner = auth_stub.member(project_id, "owner")
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    await start_capture(client, editor, run["id"])

    response = await client.delete(f"/api/v1/runs/{run['id']}", headers=owner.headers)

    await assert_problem(response, 409, "run_has_active_capture")
    assert _run_row(pgsql, run["id"]) is not None


# --- the status machine ---------------------------------------------------------------------


async def test_update_run_status_to_running_sets_started_at_only(client, editor, experiment, pgsql):
    run = await create_run(client, editor, experiment["id"])

    body = await set_run_status(client, editor, run["id"], "running")

    assert body["status"] == "running"
    assert _instant(body["started_at"]) >= _instant(run["created_at"])
    assert (body["finished_at"], body["duration_seconds"]) == (None, None)
    row = _run_row(pgsql, run["id"])
    assert row["started_at"] == _instant(body["started_at"])


@pytest.mark.parametrize("target", ["succeeded", "failed"])
async def test_update_run_status_to_finished_sets_finished_at_and_duration(
    client, editor, experiment, pgsql, target
):
    running = await create_run_in_status(client, editor, experiment["id"], "running")

    body = await set_run_status(client, editor, running["id"], target)

    assert body["status"] == target
    assert body["started_at"] == running["started_at"]
    started, finished = _instant(body["started_at"]), _instant(body["finished_at"])
    assert finished >= started
    assert body["duration_seconds"] == pytest.approx((finished - started).total_seconds(), abs=1e-3)
    row = _run_row(pgsql, running["id"])
    assert row["finished_at"] == finished
    assert row["duration_seconds"] == pytest.approx(body["duration_seconds"])


@pytest.mark.parametrize("current", ["succeeded", "failed"])
async def test_update_run_status_to_archived_keeps_times(client, editor, experiment, current):
    finished = await create_run_in_status(client, editor, experiment["id"], current)

    body = await set_run_status(client, editor, finished["id"], "archived")

    assert body["status"] == "archived"
    for field in ("started_at", "finished_at", "duration_seconds"):
        assert body[field] == finished[field]


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
async def test_update_run_status_allowed_transition_writes_one_audit_row(
    client, editor, experiment, pgsql, current, target
):
    run = await create_run_in_status(client, editor, experiment["id"], current)
    audited = len(audit_rows(pgsql, run["id"]))

    await set_run_status(client, editor, run["id"], target)

    entries = audit_rows(pgsql, run["id"])
    assert len(entries) == audited + 1
    assert entries[-1]["action"] == "run.status_changed"
    assert entries[-1]["before"]["status"] == current
    assert entries[-1]["after"]["status"] == target
    assert _run_row(pgsql, run["id"])["status"] == target


@pytest.mark.parametrize(("current", "target"), REFUSED)
async def test_update_run_status_refused_transition_returns_409_and_changes_nothing(
    client, editor, experiment, pgsql, current, target
):
    run = await create_run_in_status(client, editor, experiment["id"], current)
    before = _run_row(pgsql, run["id"])
    audited = len(audit_rows(pgsql, run["id"]))

    response = await client.patch(
        f"/api/v1/runs/{run['id']}",
        json={"status": target, "notes": "not applied"},
        headers=editor.headers,
    )

    await assert_problem(response, 409, "invalid_transition")
    assert _run_row(pgsql, run["id"]) == before
    assert len(audit_rows(pgsql, run["id"])) == audited


async def test_update_run_status_with_other_fields_applies_both(client, editor, experiment):
    run = await create_run(client, editor, experiment["id"])

    response = await client.patch(
        f"/api/v1/runs/{run['id']}",
        json={"status": "running", "notes": "go"},
        headers=editor.headers,
    )

    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["status"], body["notes"]) == ("running", "go")
    assert body["started_at"] is not None


@pytest.mark.parametrize("target", ["succeeded", "failed"])
async def test_update_run_status_finish_with_running_capture_returns_409(
    client, editor, experiment, pgsql, target
):
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    await start_capture(client, editor, run["id"])

    response = await client.patch(
        f"/api/v1/runs/{run['id']}", json={"status": target}, headers=editor.headers
    )

    await assert_problem(response, 409, "run_has_active_capture")
    row = _run_row(pgsql, run["id"])
    assert (row["status"], row["finished_at"]) == ("running", None)


async def test_update_run_status_finish_after_capture_stopped_succeeds(client, editor, experiment):
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    capture = await start_capture(client, editor, run["id"])
    stopped = await client.post(
        f"/api/v1/runs/{run['id']}/capture-sessions/{capture['id']}/stop",
        json={},
        headers=editor.headers,
    )
    assert stopped.status == 200, await stopped.text()

    body = await set_run_status(client, editor, run["id"], "succeeded")

    assert body["status"] == "succeeded"


@pytest.mark.parametrize("current", ["succeeded", "failed"])
async def test_update_run_status_archive_with_running_capture_returns_409(
    client, editor, experiment, pgsql, current
):
    run = await create_run_in_status(client, editor, experiment["id"], current)
    # The API cannot start a capture in a finished run; a backfill or an older row can be running.
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO capture_sessions (run_id, project_id, ordinal_number, status, started_at)"
            " VALUES (%s, %s, 1, 'running', now())",
            (run["id"], run["project_id"]),
        )

    response = await client.patch(
        f"/api/v1/runs/{run['id']}", json={"status": "archived"}, headers=editor.headers
    )

    await assert_problem(response, 409, "run_has_active_capture")
    assert _run_row(pgsql, run["id"])["status"] == current
