"""Capture sessions ("start/stop capture") of a run: ordinals, the one-running rule, RBAC."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from tests.experiment.factories import (
    create_experiment,
    create_run_in_status,
    expect,
    set_run_status,
    start_capture,
)
from tests.plugins.roles import role_matrix
from tests.problems import assert_problem


def sessions_url(run_id: str) -> str:
    return f"/api/v1/runs/{run_id}/capture-sessions"


def session_url(run_id: str, session_id: str) -> str:
    return f"/api/v1/runs/{run_id}/capture-sessions/{session_id}"


async def stop_capture(client, user, run_id, session_id, *, expect_status=200, **body):
    response = await client.post(
        session_url(run_id, session_id) + "/stop", json=body, headers=user.headers
    )
    return await expect(response, expect_status)


@pytest.fixture
async def run(client, owner, experiment):
    return await create_run_in_status(client, owner, experiment["id"], "running")


def session_rows(pgsql, run_id: str) -> list[tuple]:
    cursor = pgsql["experiment"].cursor()
    cursor.execute(
        "SELECT ordinal_number, status FROM capture_sessions WHERE run_id = %s "
        "ORDER BY ordinal_number",
        (run_id,),
    )
    return cursor.fetchall()


async def test_start_in_running_run_numbers_sessions_across_cycles(client, editor, run):
    ordinals = []
    for _ in range(3):
        before = datetime.now(UTC)
        response = await client.post(
            sessions_url(run["id"]), json={"notes": "take"}, headers=editor.headers
        )
        session = await expect(response, 201)
        assert response.headers["Location"] == session_url(run["id"], session["id"])
        assert session["run_id"] == run["id"]
        assert session["project_id"] == run["project_id"]
        assert session["status"] == "running"
        assert session["initiated_by"] == str(editor.id)
        assert session["notes"] == "take"
        assert session["stopped_at"] is None
        assert session["failure_reason"] is None
        started_at = datetime.fromisoformat(session["started_at"])
        assert abs((started_at - before).total_seconds()) < 5
        ordinals.append(session["ordinal_number"])
        await stop_capture(client, editor, run["id"], session["id"])
    assert ordinals == [1, 2, 3]


@pytest.mark.parametrize("status", ["draft", "succeeded", "failed", "archived"])
async def test_start_in_not_running_run_conflicts(client, owner, experiment, status, pgsql):
    run = await create_run_in_status(client, owner, experiment["id"], status)
    response = await client.post(sessions_url(run["id"]), json={}, headers=owner.headers)
    await assert_problem(response, 409, "run_not_running")
    assert session_rows(pgsql, run["id"]) == []


async def test_start_while_one_runs_conflicts(client, editor, run, pgsql):
    await start_capture(client, editor, run["id"])
    response = await client.post(sessions_url(run["id"]), json={}, headers=editor.headers)
    await assert_problem(response, 409, "capture_already_running")
    assert session_rows(pgsql, run["id"]) == [(1, "running")]


async def test_start_concurrently_creates_exactly_one_session(client, editor, run, pgsql):
    for round_number in range(1, 4):
        responses = await asyncio.gather(
            *(
                client.post(sessions_url(run["id"]), json={}, headers=editor.headers)
                for _ in range(10)
            )
        )
        statuses = sorted(r.status for r in responses)
        assert statuses == [201] + [409] * 9, statuses
        for response in responses:
            if response.status == 409:
                await assert_problem(response, 409, "capture_already_running")
        (winner,) = [await r.json() for r in responses if r.status == 201]
        assert winner["ordinal_number"] == round_number
        await stop_capture(client, editor, run["id"], winner["id"])
    assert session_rows(pgsql, run["id"]) == [(1, "succeeded"), (2, "succeeded"), (3, "succeeded")]


async def test_start_with_unknown_field_is_rejected(client, editor, run):
    response = await client.post(
        sessions_url(run["id"]), json={"status": "draft"}, headers=editor.headers
    )
    await assert_problem(response, 422, "validation_failed")


async def test_stop_running_session_succeeds(client, editor, run):
    session = await start_capture(client, editor, run["id"])
    stopped = await stop_capture(client, editor, run["id"], session["id"])
    assert stopped["status"] == "succeeded"
    assert stopped["failure_reason"] is None
    assert datetime.fromisoformat(stopped["stopped_at"]) >= datetime.fromisoformat(
        stopped["started_at"]
    )
    # With no running capture left, the run may finish.
    await set_run_status(client, editor, run["id"], "succeeded")


async def test_stop_as_failed_with_reason_fails_session(client, editor, run):
    session = await start_capture(client, editor, run["id"])
    stopped = await stop_capture(
        client, editor, run["id"], session["id"], status="failed", reason="sensor unplugged"
    )
    assert stopped["status"] == "failed"
    assert stopped["failure_reason"] == "sensor unplugged"
    assert stopped["stopped_at"] is not None


@pytest.mark.parametrize(
    "body",
    [
        {"status": "failed"},
        {"status": "failed", "reason": ""},
        {"status": "archived"},
        {"status": "running"},
        {"reason": "x" * 2001},
        {"stopped_at": "2024-01-01T00:00:00Z"},
    ],
)
async def test_stop_with_invalid_body_is_rejected(client, editor, run, body):
    session = await start_capture(client, editor, run["id"])
    response = await client.post(
        session_url(run["id"], session["id"]) + "/stop", json=body, headers=editor.headers
    )
    await assert_problem(response, 422, "validation_failed")
    current = await expect(
        await client.get(session_url(run["id"], session["id"]), headers=editor.headers), 200
    )
    assert current["status"] == "running"


@pytest.mark.parametrize("first_stop", ["succeeded", "failed"])
async def test_stop_stopped_session_conflicts(client, editor, run, first_stop):
    session = await start_capture(client, editor, run["id"])
    reason = "r" if first_stop == "failed" else None
    await stop_capture(client, editor, run["id"], session["id"], status=first_stop, reason=reason)
    response = await client.post(
        session_url(run["id"], session["id"]) + "/stop", json={}, headers=editor.headers
    )
    await assert_problem(response, 409, "capture_not_running")


async def test_list_sessions_pages_by_ordinal(client, editor, run, auth_stub, project_id):
    created = []
    for _ in range(5):
        session = await start_capture(client, editor, run["id"])
        created.append(await stop_capture(client, editor, run["id"], session["id"]))
    viewer = auth_stub.member(project_id, "viewer")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await expect(
            await client.get(sessions_url(run["id"]), params=params, headers=viewer.headers), 200
        )
        pages += 1
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [s["ordinal_number"] for s in seen] == [1, 2, 3, 4, 5]
    assert seen == created


async def test_list_sessions_of_run_without_sessions_is_empty(client, editor, run):
    page = await expect(await client.get(sessions_url(run["id"]), headers=editor.headers), 200)
    assert page == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJpZCI6IDF9"},  # {"id": 1}: another list's cursor
        {"cursor": "eyJvcmRpbmFsIjogMjE0NzQ4MzY0OH0"},  # {"ordinal": 2147483648}: past int4
        {"cursor": "eyJvcmRpbmFsIjogLTF9"},  # {"ordinal": -1}
        {"limit": "0"},
        {"limit": "501"},
    ],
)
async def test_list_sessions_with_bad_paging_is_rejected(client, editor, run, params):
    response = await client.get(sessions_url(run["id"]), params=params, headers=editor.headers)
    if "cursor" in params:
        await assert_problem(response, 400, "invalid_cursor")
    else:
        await assert_problem(response, 422, "validation_failed")


async def test_get_session_returns_it(client, editor, run, auth_stub, project_id):
    session = await start_capture(client, editor, run["id"])
    viewer = auth_stub.member(project_id, "viewer")
    fetched = await expect(
        await client.get(session_url(run["id"], session["id"]), headers=viewer.headers), 200
    )
    assert fetched == session


async def test_patch_notes_changes_only_notes(client, editor, run):
    session = await start_capture(client, editor, run["id"])
    response = await client.patch(
        session_url(run["id"], session["id"]), json={"notes": "gusty"}, headers=editor.headers
    )
    updated = await expect(response, 200)
    assert updated["notes"] == "gusty"
    unchanged = {k: v for k, v in updated.items() if k not in ("notes", "updated_at")}
    assert unchanged == {k: v for k, v in session.items() if k not in ("notes", "updated_at")}


@pytest.mark.parametrize(
    "body", [{}, {"notes": None}, {"notes": "x" * 10001}, {"status": "failed"}, {"notes": 5}]
)
async def test_patch_with_invalid_body_is_rejected(client, editor, run, body):
    session = await start_capture(client, editor, run["id"])
    response = await client.patch(
        session_url(run["id"], session["id"]), json=body, headers=editor.headers
    )
    await assert_problem(response, 422, "validation_failed")


async def test_delete_failed_session_removes_it(client, owner, run, pgsql):
    session = await start_capture(client, owner, run["id"])
    await stop_capture(client, owner, run["id"], session["id"], status="failed", reason="noise")
    response = await client.delete(session_url(run["id"], session["id"]), headers=owner.headers)
    await expect(response, 204)
    assert session_rows(pgsql, run["id"]) == []
    response = await client.get(session_url(run["id"], session["id"]), headers=owner.headers)
    await assert_problem(response, 404, "capture_session_not_found")


async def test_delete_draft_session_removes_it(client, owner, run, pgsql):
    cursor = pgsql["experiment"].cursor()
    cursor.execute(
        "INSERT INTO capture_sessions (run_id, project_id, ordinal_number, status) "
        "VALUES (%s, %s, 1, 'draft') RETURNING id",
        (run["id"], run["project_id"]),
    )
    (session_id,) = cursor.fetchone()
    response = await client.delete(session_url(run["id"], session_id), headers=owner.headers)
    await expect(response, 204)
    assert session_rows(pgsql, run["id"]) == []


@pytest.mark.parametrize("state", ["running", "succeeded"])
async def test_delete_running_or_succeeded_session_conflicts(client, owner, run, state, pgsql):
    session = await start_capture(client, owner, run["id"])
    if state == "succeeded":
        await stop_capture(client, owner, run["id"], session["id"])
    response = await client.delete(session_url(run["id"], session["id"]), headers=owner.headers)
    await assert_problem(response, 409, "capture_not_deletable")
    assert session_rows(pgsql, run["id"]) == [(1, state)]


async def test_delete_session_as_editor_is_forbidden(client, owner, editor, run, pgsql):
    session = await start_capture(client, editor, run["id"])
    await stop_capture(client, editor, run["id"], session["id"], status="failed", reason="r")
    response = await client.delete(session_url(run["id"], session["id"]), headers=editor.headers)
    await assert_problem(response, 403, "forbidden")
    assert session_rows(pgsql, run["id"]) == [(1, "failed")]


# route -> answer per role: a status for success, (status, code) for a problem.
FORBIDDEN = (403, "forbidden")
NO_RUN = (404, "run_not_found")
SESSION_MATRIX = {
    "list": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_RUN},
    "get": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_RUN},
    "start": {"owner": 201, "editor": 201, "viewer": FORBIDDEN, "stranger": NO_RUN},
    "stop": {"owner": 200, "editor": 200, "viewer": FORBIDDEN, "stranger": NO_RUN},
    "patch": {"owner": 200, "editor": 200, "viewer": FORBIDDEN, "stranger": NO_RUN},
    "delete": {"owner": 204, "editor": FORBIDDEN, "viewer": FORBIDDEN, "stranger": NO_RUN},
}


@role_matrix(SESSION_MATRIX)
async def test_session_route_by_role_answers_per_rbac(
    client, owner, run, auth_stub, caller_as, project_id, route, role, expected
):
    failed = await start_capture(client, owner, run["id"])
    await stop_capture(client, owner, run["id"], failed["id"], status="failed", reason="r")
    if route == "stop":
        target = await start_capture(client, owner, run["id"])
    else:
        target = failed
    user = caller_as(role, project_id)
    # An owner elsewhere too: for a stranger the run's project is not theirs, so neither the run.
    auth_stub.grant(user, uuid.uuid4(), "owner")
    url = session_url(run["id"], target["id"])
    response = await {
        "list": lambda: client.get(sessions_url(run["id"]), headers=user.headers),
        "get": lambda: client.get(url, headers=user.headers),
        "start": lambda: client.post(sessions_url(run["id"]), json={}, headers=user.headers),
        "stop": lambda: client.post(url + "/stop", json={}, headers=user.headers),
        "patch": lambda: client.patch(url, json={"notes": "n"}, headers=user.headers),
        "delete": lambda: client.delete(url, headers=user.headers),
    }[route]()
    if isinstance(expected, tuple):
        await assert_problem(response, *expected)
    else:
        assert response.status == expected, await response.text()


async def test_session_routes_without_token_are_unauthorized(client, owner, run):
    session = await start_capture(client, owner, run["id"])
    response = await client.get(session_url(run["id"], session["id"]))
    await assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize("method", ["get", "patch", "delete", "stop", "events"])
async def test_session_of_another_run_is_not_found(client, owner, experiment, run, method):
    other_run = await create_run_in_status(client, owner, experiment["id"], "running")
    session = await start_capture(client, owner, other_run["id"])
    url = session_url(run["id"], session["id"])
    response = await {
        "get": lambda: client.get(url, headers=owner.headers),
        "patch": lambda: client.patch(url, json={"notes": "x"}, headers=owner.headers),
        "delete": lambda: client.delete(url, headers=owner.headers),
        "stop": lambda: client.post(url + "/stop", json={}, headers=owner.headers),
        "events": lambda: client.get(url + "/events", headers=owner.headers),
    }[method]()
    await assert_problem(response, 404, "capture_session_not_found")
    still = await expect(
        await client.get(session_url(other_run["id"], session["id"]), headers=owner.headers), 200
    )
    assert still["status"] == "running"
    assert still["notes"] == ""


async def test_session_routes_of_unknown_run_are_not_found(client, owner):
    run_id, session_id = uuid.uuid4(), uuid.uuid4()
    for response in [
        await client.get(sessions_url(run_id), headers=owner.headers),
        await client.post(sessions_url(run_id), json={}, headers=owner.headers),
        await client.get(session_url(run_id, session_id), headers=owner.headers),
    ]:
        await assert_problem(response, 404, "run_not_found")


async def test_unknown_session_of_known_run_is_not_found(client, owner, run):
    response = await client.get(session_url(run["id"], uuid.uuid4()), headers=owner.headers)
    await assert_problem(response, 404, "capture_session_not_found")


@pytest.mark.parametrize("path", ["/api/v1/runs/not-a-uuid/capture-sessions", "session"])
async def test_session_route_with_invalid_uuid_is_not_found(client, owner, run, path):
    if path == "session":
        path = session_url(run["id"], "12345")
    response = await client.get(path, headers=owner.headers)
    await assert_problem(response, 404, "not_found")


async def test_delete_run_with_running_session_conflicts(client, owner, run, pgsql):
    await start_capture(client, owner, run["id"])
    response = await client.delete(f"/api/v1/runs/{run['id']}", headers=owner.headers)
    await assert_problem(response, 409, "run_has_active_capture")
    assert session_rows(pgsql, run["id"]) == [(1, "running")]


async def test_stop_concurrently_stops_once(client, editor, run, pgsql):
    session = await start_capture(client, editor, run["id"])
    url = session_url(run["id"], session["id"]) + "/stop"
    responses = await asyncio.gather(
        *(client.post(url, json={}, headers=editor.headers) for _ in range(10))
    )
    assert sorted(r.status for r in responses) == [200] + [409] * 9
    for response in responses:
        if response.status == 409:
            await assert_problem(response, 409, "capture_not_running")
    cursor = pgsql["experiment"].cursor()
    cursor.execute(
        "SELECT count(*) FROM audit_log WHERE entity_id = %s AND action = %s",
        (session["id"], "capture_session.stopped"),
    )
    assert cursor.fetchone()[0] == 1


@pytest.mark.parametrize("finish", ["succeeded", "failed"])
async def test_start_racing_run_finish_never_leaves_capture_running(
    client, editor, experiment, finish, pgsql
):
    for _ in range(5):
        run = await create_run_in_status(client, editor, experiment["id"], "running")
        started, finished = await asyncio.gather(
            client.post(sessions_url(run["id"]), json={}, headers=editor.headers),
            client.patch(
                f"/api/v1/runs/{run['id']}", json={"status": finish}, headers=editor.headers
            ),
        )
        if started.status == 201:
            await assert_problem(finished, 409, "run_has_active_capture")
            assert session_rows(pgsql, run["id"]) == [(1, "running")]
        else:
            await assert_problem(started, 409, "run_not_running")
            assert finished.status == 200, await finished.text()
            assert session_rows(pgsql, run["id"]) == []


async def test_start_and_stop_capture_without_a_body_work(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    path = f"/api/v1/runs/{run['id']}/capture-sessions"

    started = await client.post(path, headers=editor.headers)
    assert started.status == 201, await started.text()
    session = await started.json()
    stopped = await client.post(f"{path}/{session['id']}/stop", headers=editor.headers)

    assert stopped.status == 200, await stopped.text()
    assert (await stopped.json())["status"] == "succeeded"


async def test_stop_succeeded_with_a_reason_is_422(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    session = await start_capture(client, editor, run["id"])

    response = await client.post(
        f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}/stop",
        json={"status": "succeeded", "reason": "why"},
        headers=editor.headers,
    )

    await assert_problem(response, 422, "validation_failed")


async def test_ordinal_of_a_deleted_newest_session_is_not_reused(
    client, editor, project_id, auth_stub
):
    owner = auth_stub.member(project_id, "owner")
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    first = await start_capture(client, editor, run["id"])
    await stop_capture(client, editor, run["id"], first["id"], status="failed", reason="r")
    deleted = await client.delete(session_url(run["id"], first["id"]), headers=owner.headers)
    assert deleted.status == 204, await deleted.text()

    second = await start_capture(client, editor, run["id"])

    assert (first["ordinal_number"], second["ordinal_number"]) == (1, 2)
