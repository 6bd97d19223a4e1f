"""The audit log: one row per mutation, the events/audit read routes, append-only storage."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson
import pytest

from tests.experiment.factories import (
    create_experiment,
    create_run,
    create_run_in_status,
    expect,
    start_capture,
)
from tests.plugins.roles import role_matrix
from tests.problems import assert_problem


@pytest.fixture
async def db(pgsql, make_settings):
    conn = await asyncpg.connect(make_settings("experiment").database_url.get_secret_value())
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            schema="pg_catalog",
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
        )
    yield conn
    await conn.close()


async def audit_rows(db, **where: Any) -> list[dict[str, Any]]:
    conditions = " AND ".join(f"{column} = ${n}" for n, column in enumerate(where, 1)) or "true"
    rows = await db.fetch(
        f"SELECT * FROM audit_log WHERE {conditions} ORDER BY id", *where.values()
    )
    return [dict(row) for row in rows]


def encode(key: dict[str, Any]) -> str:
    # json, not orjson: a forged cursor may hold integers past 64 bits.
    return base64.urlsafe_b64encode(json.dumps(key).encode()).rstrip(b"=").decode()


def headers(user, request_id: str) -> dict[str, str]:
    return {**user.headers, "X-Request-Id": request_id}


async def test_create_experiment_writes_one_full_audit_row(client, editor, project_id, db):
    before = datetime.now(UTC)
    response = await client.post(
        "/api/v1/experiments",
        json={"project_id": str(project_id), "name": "Wind tunnel", "tags": ["aero"]},
        headers=headers(editor, "req-create-1"),
    )
    experiment = await expect(response, 201)
    assert response.headers["X-Request-Id"] == "req-create-1"
    (row,) = await audit_rows(db)
    assert row["project_id"] == project_id
    assert row["actor_id"] == editor.id
    assert row["actor_role"] == "editor"
    assert row["action"] == "experiment.created"
    assert row["entity_type"] == "experiment"
    assert row["entity_id"] == uuid.UUID(experiment["id"])
    assert row["parent_id"] is None
    assert row["before"] is None
    assert row["after"] == experiment
    assert row["request_id"] == "req-create-1"
    assert before - timedelta(seconds=5) < row["at"] < datetime.now(UTC) + timedelta(seconds=5)


async def test_request_without_request_id_gets_generated_one_in_audit(
    client, editor, project_id, db
):
    response = await client.post(
        "/api/v1/experiments",
        json={"project_id": str(project_id), "name": "x"},
        headers=editor.headers,
    )
    await expect(response, 201)
    (row,) = await audit_rows(db)
    assert row["request_id"] == response.headers["X-Request-Id"]
    assert row["request_id"]


async def test_every_mutation_writes_one_audit_row(client, owner, editor, project_id, db):
    """Each mutating route, in turn: exactly one row with that request's id, action and diff."""
    steps = []

    async def mutate(method, url, status, *, user=editor, json=None):
        request_id = f"req-{len(steps)}-{uuid.uuid4().hex[:8]}"
        response = await client.request(method, url, json=json, headers=headers(user, request_id))
        body = await expect(response, status)
        rows = await audit_rows(db, request_id=request_id)
        assert len(rows) == 1, (method, url, rows)
        row = rows[0]
        assert row["actor_id"] == user.id
        assert row["actor_role"] == ("owner" if user is owner else "editor")
        assert row["project_id"] == project_id
        steps.append(row["action"])
        return body, row

    experiment, row = await mutate(
        "POST", "/api/v1/experiments", 201, json={"project_id": str(project_id), "name": "e"}
    )
    assert (row["entity_type"], row["before"], row["after"]) == ("experiment", None, experiment)
    exp_url = f"/api/v1/experiments/{experiment['id']}"

    _, row = await mutate("PATCH", exp_url, 200, json={"description": "new"})
    assert (row["before"], row["after"]) == ({"description": ""}, {"description": "new"})

    _, row = await mutate("PATCH", exp_url, 200, json={"status": "running"})
    assert (row["before"], row["after"]) == ({"status": "draft"}, {"status": "running"})

    run, row = await mutate("POST", f"{exp_url}/runs", 201, json={"name": "r", "params": {"a": 1}})
    assert row["entity_type"] == "run"
    assert row["entity_id"] == uuid.UUID(run["id"])
    assert row["parent_id"] == uuid.UUID(experiment["id"])
    assert (row["before"], row["after"]) == (None, run)
    run_url = f"/api/v1/runs/{run['id']}"

    _, row = await mutate("PATCH", run_url, 200, json={"notes": "calm", "params": {"a": 1}})
    assert (row["before"], row["after"]) == ({"notes": ""}, {"notes": "calm"})

    started, row = await mutate("PATCH", run_url, 200, json={"status": "running"})
    assert row["before"] == {"status": "draft", "started_at": None}
    assert row["after"] == {"status": "running", "started_at": started["started_at"]}

    session, row = await mutate("POST", f"{run_url}/capture-sessions", 201, json={})
    assert row["entity_type"] == "capture_session"
    assert row["entity_id"] == uuid.UUID(session["id"])
    assert row["parent_id"] == uuid.UUID(run["id"])
    assert (row["before"], row["after"]) == (None, session)
    session_url = f"{run_url}/capture-sessions/{session['id']}"

    _, row = await mutate("PATCH", session_url, 200, json={"notes": "n"})
    assert (row["before"], row["after"]) == ({"notes": ""}, {"notes": "n"})

    stopped, row = await mutate(
        "POST", f"{session_url}/stop", 200, json={"status": "failed", "reason": "r"}
    )
    assert row["before"] == {"status": "running", "stopped_at": None, "failure_reason": None}
    assert row["after"] == {
        "status": "failed",
        "stopped_at": stopped["stopped_at"],
        "failure_reason": "r",
    }

    _, row = await mutate("DELETE", session_url, 204, user=owner)
    assert (row["before"], row["after"]) == (stopped, None)

    _, row = await mutate(
        "POST", "/api/v1/runs:bulk-tags", 200, json={"run_ids": [run["id"]], "add": ["t"]}
    )
    assert (row["before"], row["after"]) == ({"tags": []}, {"tags": ["t"]})

    _, row = await mutate(
        "POST", "/api/v1/runs:batch-status", 200, json={"run_ids": [run["id"]], "status": "failed"}
    )
    assert row["before"]["status"] == "running"
    assert row["after"]["status"] == "failed"

    current = await expect(await client.get(run_url, headers=owner.headers), 200)
    _, row = await mutate("DELETE", run_url, 204, user=owner)
    assert (row["before"], row["after"]) == ({**current, "deleted_capture_sessions": 0}, None)

    current = await expect(await client.get(exp_url, headers=owner.headers), 200)
    _, row = await mutate("DELETE", exp_url, 204, user=owner)
    assert (row["before"], row["after"]) == ({**current, "deleted_runs": 0}, None)

    assert steps == [
        "experiment.created",
        "experiment.updated",
        "experiment.status_changed",
        "run.created",
        "run.updated",
        "run.status_changed",
        "capture_session.started",
        "capture_session.updated",
        "capture_session.stopped",
        "capture_session.deleted",
        "run.tags_updated",
        "run.status_changed",
        "run.deleted",
        "experiment.deleted",
    ]
    assert len(await audit_rows(db)) == len(steps)


async def test_batch_change_writes_one_audit_row_per_run(client, editor, project_id, db):
    experiment = await create_experiment(client, editor, project_id)
    runs = [await create_run(client, editor, experiment["id"]) for _ in range(3)]
    response = await client.post(
        "/api/v1/runs:bulk-tags",
        json={"run_ids": [r["id"] for r in runs], "set": ["x"]},
        headers=headers(editor, "req-bulk"),
    )
    await expect(response, 200)
    rows = await audit_rows(db, request_id="req-bulk")
    assert sorted(row["entity_id"] for row in rows) == sorted(uuid.UUID(r["id"]) for r in runs)
    assert {row["action"] for row in rows} == {"run.tags_updated"}


async def test_refused_mutation_writes_no_audit_row(client, owner, editor, project_id, db):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    await start_capture(client, editor, run["id"])
    refused = [
        ("PATCH", f"/api/v1/runs/{run['id']}", {"status": "succeeded"}, editor, 409),
        ("POST", f"/api/v1/runs/{run['id']}/capture-sessions", {}, editor, 409),
        ("DELETE", f"/api/v1/experiments/{experiment['id']}", None, editor, 403),
        ("PATCH", f"/api/v1/runs/{run['id']}", {"status": "bogus"}, editor, 422),
        (
            "POST",
            "/api/v1/runs:batch-status",
            {"run_ids": [run["id"], str(uuid.uuid4())], "status": "failed"},
            owner,
            409,
        ),
    ]
    count = len(await audit_rows(db))
    for n, (method, url, body, user, status) in enumerate(refused):
        response = await client.request(method, url, json=body, headers=headers(user, f"no-{n}"))
        assert response.status == status, await response.text()
        assert await audit_rows(db, request_id=f"no-{n}") == []
    assert len(await audit_rows(db)) == count


async def walk(client, url, user, *, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        page = await expect(await client.get(url, params=query, headers=user.headers), 200)
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def _run_with_history(client, editor, experiment_id):
    run = await create_run_in_status(client, editor, experiment_id, "running")
    url = f"/api/v1/runs/{run['id']}/capture-sessions"
    first = await start_capture(client, editor, run["id"])
    await expect(
        await client.post(f"{url}/{first['id']}/stop", json={}, headers=editor.headers), 200
    )
    second = await start_capture(client, editor, run["id"])
    return run, first, second


async def test_run_events_list_run_and_its_sessions_oldest_first(
    client, editor, auth_stub, project_id
):
    experiment = await create_experiment(client, editor, project_id)
    run, first, second = await _run_with_history(client, editor, experiment["id"])
    await _run_with_history(client, editor, experiment["id"])  # another run's noise
    viewer = auth_stub.member(project_id, "viewer")
    events = await walk(client, f"/api/v1/runs/{run['id']}/events", viewer, limit=2)
    assert [(e["action"], e["entity_id"]) for e in events] == [
        ("run.created", run["id"]),
        ("run.status_changed", run["id"]),
        ("capture_session.started", first["id"]),
        ("capture_session.stopped", first["id"]),
        ("capture_session.started", second["id"]),
    ]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    instants = [datetime.fromisoformat(e["at"]) for e in events]
    assert instants == sorted(instants)
    assert events[0]["actor_id"] == str(editor.id)
    assert events[0]["actor_role"] == "editor"
    assert events[0]["after"]["name"] == run["name"]
    assert set(events[0]) == {
        "id",
        "project_id",
        "actor_id",
        "actor_role",
        "action",
        "entity_type",
        "entity_id",
        "parent_id",
        "before",
        "after",
        "request_id",
        "at",
    }


async def test_capture_session_events_list_only_that_session(client, owner, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run, first, second = await _run_with_history(client, editor, experiment["id"])
    url = f"/api/v1/runs/{run['id']}/capture-sessions"
    events = await walk(client, f"{url}/{first['id']}/events", editor, limit=1)
    assert [e["action"] for e in events] == ["capture_session.started", "capture_session.stopped"]
    assert {e["entity_id"] for e in events} == {first["id"]}

    # A deleted session keeps its history.
    await expect(
        await client.post(
            f"{url}/{second['id']}/stop",
            json={"status": "failed", "reason": "r"},
            headers=editor.headers,
        ),
        200,
    )
    await expect(await client.delete(f"{url}/{second['id']}", headers=owner.headers), 204)
    events = await walk(client, f"{url}/{second['id']}/events", editor, limit=50)
    assert [e["action"] for e in events] == [
        "capture_session.started",
        "capture_session.stopped",
        "capture_session.deleted",
    ]


async def test_capture_session_events_of_unknown_session_are_not_found(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    response = await client.get(
        f"/api/v1/runs/{run['id']}/capture-sessions/{uuid.uuid4()}/events", headers=editor.headers
    )
    await assert_problem(response, 404, "capture_session_not_found")


async def test_events_of_another_projects_run_are_not_found(client, editor, auth_stub, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run, first, _ = await _run_with_history(client, editor, experiment["id"])
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    for url in [
        f"/api/v1/runs/{run['id']}/events",
        f"/api/v1/runs/{run['id']}/capture-sessions/{first['id']}/events",
        f"/api/v1/runs/{uuid.uuid4()}/events",
    ]:
        response = await client.get(url, headers=stranger.headers)
        await assert_problem(response, 404, "run_not_found")


async def test_audit_lists_project_entries_with_filters(
    client, owner, editor, auth_stub, project_id
):
    experiment = await create_experiment(client, editor, project_id)
    run, first, second = await _run_with_history(client, editor, experiment["id"])
    await expect(
        await client.patch(
            f"/api/v1/experiments/{experiment['id']}",
            json={"name": "renamed"},
            headers=owner.headers,
        ),
        200,
    )
    # Another project's history never shows.
    other_project = uuid.uuid4()
    other = auth_stub.member(other_project, "owner")
    await create_experiment(client, other, other_project)

    viewer = auth_stub.member(project_id, "viewer")
    url = "/api/v1/audit"
    everything = await walk(client, url, viewer, limit=3, project_id=str(project_id))
    assert [e["action"] for e in everything] == [
        "experiment.created",
        "run.created",
        "run.status_changed",
        "capture_session.started",
        "capture_session.stopped",
        "capture_session.started",
        "experiment.updated",
    ]
    assert {e["project_id"] for e in everything} == {str(project_id)}

    async def filtered(**params):
        items = await walk(client, url, viewer, limit=500, project_id=str(project_id), **params)
        return [(e["action"], e["entity_id"]) for e in items]

    assert await filtered(entity_type="capture_session") == [
        ("capture_session.started", first["id"]),
        ("capture_session.stopped", first["id"]),
        ("capture_session.started", second["id"]),
    ]
    assert await filtered(entity_id=run["id"]) == [
        ("run.created", run["id"]),
        ("run.status_changed", run["id"]),
    ]
    assert await filtered(action="capture_session.started") == [
        ("capture_session.started", first["id"]),
        ("capture_session.started", second["id"]),
    ]
    assert await filtered(actor_id=str(owner.id)) == [("experiment.updated", experiment["id"])]
    assert await filtered(entity_type="run", action="run.created") == [("run.created", run["id"])]
    assert await filtered(actor_id=str(uuid.uuid4())) == []

    # since is inclusive, until exclusive (each request's entry has its own instant).
    everything = await walk(client, url, viewer, limit=500, project_id=str(project_id))
    third, fifth = everything[2]["at"], everything[4]["at"]
    in_range = await filtered(since=third, until=fifth)
    assert in_range == [(e["action"], e["entity_id"]) for e in everything[2:4]]
    assert len(await filtered(since=fifth)) == len(everything) - 4
    assert len(await filtered(until=third)) == 2
    # Offsets other than UTC name the same instants.
    local = datetime.fromisoformat(third).astimezone(timezone(timedelta(hours=3))).isoformat()
    assert await filtered(since=local, until=fifth) == in_range


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"project_id": "nope"},
        {"entity_type": "telemetry_record"},
        {"entity_id": "nope"},
        {"actor_id": "nope"},
        {"since": "yesterday"},
        {"since": "2024-01-01T00:00:00"},
        {"since": "0001-01-01T00:00:00+01:00"},
        {"until": "9999-12-31T23:59:59-01:00"},
        {"limit": "0"},
        {"limit": "501"},
        {"colour": "red"},
    ],
)
async def test_audit_with_bad_query_is_rejected(client, editor, project_id, params):
    query = {"project_id": str(project_id), **params} if params else {}
    response = await client.get("/api/v1/audit", params=query, headers=editor.headers)
    await assert_problem(response, 422, "validation_failed")


@pytest.mark.parametrize(
    "key", ["%%%", {"id": "x"}, {"id": -1}, {"id": 2**63}, {"id": 10**20}, {"ordinal": 1}]
)
async def test_audit_with_garbage_cursor_is_rejected(client, editor, project_id, key):
    cursor = key if isinstance(key, str) else encode(key)
    response = await client.get(
        "/api/v1/audit",
        params={"project_id": str(project_id), "cursor": cursor},
        headers=editor.headers,
    )
    await assert_problem(response, 400, "invalid_cursor")


async def test_run_events_with_out_of_range_cursor_is_rejected(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run(client, editor, experiment["id"])
    response = await client.get(
        f"/api/v1/runs/{run['id']}/events",
        params={"cursor": encode({"id": 2**63})},
        headers=editor.headers,
    )
    await assert_problem(response, 400, "invalid_cursor")


@role_matrix({"audit": {"owner": 200, "editor": 200, "viewer": 200, "stranger": 404}})
async def test_audit_by_role_readable_by_members_only(
    client, editor, auth_stub, caller_as, project_id, route, role, expected
):
    await create_experiment(client, editor, project_id)
    user = caller_as(role, project_id)
    # An owner elsewhere too: for a stranger the project is not theirs, so neither its audit.
    auth_stub.grant(user, uuid.uuid4(), "owner")
    response = await client.get(
        "/api/v1/audit", params={"project_id": str(project_id)}, headers=user.headers
    )
    if expected == 404:
        await assert_problem(response, 404, "not_found")
    else:
        page = await expect(response, expected)
        assert [e["action"] for e in page["items"]] == ["experiment.created"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'forged'",
        "UPDATE audit_log SET request_id = NULL WHERE id = (SELECT min(id) FROM audit_log)",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = (SELECT min(id) FROM audit_log)",
    ],
)
async def test_audit_log_change_is_refused(client, editor, project_id, db, statement):
    await create_experiment(client, editor, project_id)
    rows = await audit_rows(db)
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await db.execute(statement)
    assert await audit_rows(db) == rows


async def test_delete_run_records_how_many_capture_sessions_went_with_it(
    client, owner, editor, project_id, db
):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    for _ in range(2):
        session = await start_capture(client, editor, run["id"])
        stopped = await client.post(
            f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}/stop",
            headers=editor.headers,
        )
        assert stopped.status == 200

    deleted = await client.delete(f"/api/v1/runs/{run['id']}", headers=owner.headers)

    assert deleted.status == 204
    [row] = await audit_rows(db, action="run.deleted")
    assert row["before"]["deleted_capture_sessions"] == 2
