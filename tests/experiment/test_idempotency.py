"""Idempotency-Key on the creating POSTs (the IETF httpapi draft's semantics: a repeated key
replays the stored answer, the same key with another request is refused): replay, key reuse,
races, per-user keys."""

import asyncio
import uuid

import pytest

from backend_common.idempotency import purge_expired
from backend_common.keys import DATABASE
from tests.experiment.factories import (
    create_experiment,
    create_run,
    create_run_in_status,
    set_run_status,
    start_capture,
)
from tests.problems import assert_problem


def count(pgsql, table: str, where: str = "true", params: tuple = ()) -> int:
    cursor = pgsql["experiment"].cursor()
    cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)
    return cursor.fetchone()[0]


def keyed(user, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


async def test_create_experiment_same_key_and_body_replays_first_answer(
    client, editor, project_id, pgsql
):
    body = {"project_id": str(project_id), "name": "Wind tunnel", "tags": ["aero"]}
    first = await client.post("/api/v1/experiments", json=body, headers=keyed(editor, "k-1"))
    assert first.status == 201, await first.text()
    assert "Idempotent-Replayed" not in first.headers
    for _ in range(2):
        again = await client.post("/api/v1/experiments", json=body, headers=keyed(editor, "k-1"))
        assert again.status == 201, await again.text()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["Location"] == first.headers["Location"]
        assert again.content_type == "application/json"
        assert await again.read() == await first.read()
    assert count(pgsql, "experiments") == 1
    assert count(pgsql, "audit_log") == 1


async def test_create_without_key_creates_every_time(client, editor, project_id, pgsql):
    body = {"project_id": str(project_id), "name": "same"}
    for _ in range(2):
        response = await client.post("/api/v1/experiments", json=body, headers=editor.headers)
        assert response.status == 201
    assert count(pgsql, "experiments") == 2
    assert count(pgsql, "request_idempotency") == 0


async def test_create_experiment_concurrently_with_one_key_creates_one_row(
    client, editor, project_id, pgsql
):
    body = {"project_id": str(project_id), "name": "raced"}
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/experiments", json=body, headers=keyed(editor, "race"))
            for _ in range(100)
        )
    )
    assert [response.status for response in responses] == [201] * 100
    created_ids = {(await response.json())["id"] for response in responses}
    assert len(created_ids) == 1
    assert count(pgsql, "experiments") == 1
    assert count(pgsql, "audit_log") == 1
    replay = await client.post("/api/v1/experiments", json=body, headers=keyed(editor, "race"))
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert (await replay.json())["id"] in created_ids


async def test_same_key_with_other_body_is_rejected(client, editor, project_id, pgsql):
    body = {"project_id": str(project_id), "name": "first"}
    first = await client.post("/api/v1/experiments", json=body, headers=keyed(editor, "k"))
    assert first.status == 201
    for other in [{**body, "name": "second"}, {**body, "description": ""}]:
        response = await client.post("/api/v1/experiments", json=other, headers=keyed(editor, "k"))
        await assert_problem(response, 422, "idempotency_key_reused")
    assert count(pgsql, "experiments") == 1


async def test_same_key_on_another_route_is_rejected(client, editor, project_id, pgsql):
    experiment = await create_experiment(client, editor, project_id)
    other = await create_experiment(client, editor, project_id)
    body = {"name": "r"}
    response = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs", json=body, headers=keyed(editor, "k")
    )
    assert response.status == 201
    response = await client.post(
        f"/api/v1/experiments/{other['id']}/runs", json=body, headers=keyed(editor, "k")
    )
    await assert_problem(response, 422, "idempotency_key_reused")
    assert count(pgsql, "runs") == 1


async def test_same_key_of_another_user_creates_their_own_resource(
    client, editor, auth_stub, project_id, pgsql
):
    other = auth_stub.member(project_id, "editor")
    body = {"project_id": str(project_id), "name": "shared"}
    mine = await client.post("/api/v1/experiments", json=body, headers=keyed(editor, "k"))
    assert mine.status == 201
    theirs = await client.post("/api/v1/experiments", json=body, headers=keyed(other, "k"))
    assert theirs.status == 201, await theirs.text()
    assert "Idempotent-Replayed" not in theirs.headers
    mine_body, theirs_body = await mine.json(), await theirs.json()
    assert theirs_body["id"] != mine_body["id"]
    assert theirs_body["owner_id"] == str(other.id)
    # And each keeps replaying their own.
    again = await client.post("/api/v1/experiments", json=body, headers=keyed(other, "k"))
    assert (await again.json())["id"] == theirs_body["id"]
    assert count(pgsql, "experiments") == 2


async def test_same_key_of_user_outside_project_never_replays_stored_answer(
    client, editor, auth_stub, project_id, pgsql
):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    body = {"project_id": str(project_id), "name": "secret"}
    first = await client.post("/api/v1/experiments", json=body, headers=keyed(editor, "k"))
    assert first.status == 201
    response = await client.post("/api/v1/experiments", json=body, headers=keyed(stranger, "k"))
    await assert_problem(response, 404, "not_found")
    assert "secret" not in await response.text()
    assert count(pgsql, "experiments") == 1


async def test_failed_validation_does_not_store_key(client, editor, project_id, pgsql):
    bad = {"project_id": str(project_id)}
    response = await client.post("/api/v1/experiments", json=bad, headers=keyed(editor, "k"))
    await assert_problem(response, 422, "validation_failed")
    assert count(pgsql, "request_idempotency") == 0
    good = {**bad, "name": "fixed"}
    response = await client.post("/api/v1/experiments", json=good, headers=keyed(editor, "k"))
    assert response.status == 201, await response.text()
    assert "Idempotent-Replayed" not in response.headers
    assert count(pgsql, "experiments") == 1


async def test_failed_domain_rule_does_not_store_key(client, editor, project_id, pgsql):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run(client, editor, experiment["id"])
    url = f"/api/v1/runs/{run['id']}/capture-sessions"
    response = await client.post(url, json={}, headers=keyed(editor, "k"))
    await assert_problem(response, 409, "run_not_running")
    await set_run_status(client, editor, run["id"], "running")
    response = await client.post(url, json={}, headers=keyed(editor, "k"))
    assert response.status == 201, await response.text()
    assert "Idempotent-Replayed" not in response.headers
    assert count(pgsql, "capture_sessions") == 1


async def test_refused_role_does_not_store_key(client, auth_stub, project_id, pgsql):
    user = auth_stub.member(project_id, "viewer")
    body = {"project_id": str(project_id), "name": "later"}
    response = await client.post("/api/v1/experiments", json=body, headers=keyed(user, "k"))
    await assert_problem(response, 403, "forbidden")
    auth_stub.grant(user, project_id, "editor")
    response = await client.post("/api/v1/experiments", json=body, headers=keyed(user, "k"))
    assert response.status == 201, await response.text()
    assert count(pgsql, "experiments") == 1


async def test_expired_key_starts_afresh(client, editor, project_id, pgsql):
    body = {"project_id": str(project_id), "name": "old"}
    first = await client.post("/api/v1/experiments", json=body, headers=keyed(editor, "k"))
    assert first.status == 201
    cursor = pgsql["experiment"].cursor()
    cursor.execute("UPDATE request_idempotency SET expires_at = now() - interval '1 second'")
    again = await client.post("/api/v1/experiments", json=body, headers=keyed(editor, "k"))
    assert again.status == 201
    assert "Idempotent-Replayed" not in again.headers
    assert (await again.json())["id"] != (await first.json())["id"]
    assert count(pgsql, "experiments") == 2
    assert count(pgsql, "request_idempotency") == 1


async def _post_create_run(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    return f"/api/v1/experiments/{experiment['id']}/runs", {"name": "r", "params": {"lr": 1}}


async def _post_start_capture(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    return f"/api/v1/runs/{run['id']}/capture-sessions", {"notes": "n"}


async def _post_batch_status(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    runs = [await create_run(client, editor, experiment["id"]) for _ in range(2)]
    return "/api/v1/runs:batch-status", {"run_ids": [r["id"] for r in runs], "status": "running"}


async def _post_bulk_tags(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    runs = [await create_run(client, editor, experiment["id"], tags=["a"]) for _ in range(2)]
    # Toggling would undo itself on a second execution; a replay must not execute again.
    return "/api/v1/runs:bulk-tags", {"run_ids": [r["id"] for r in runs], "add": ["b"]}


_ROUTES = {
    "create_run": (_post_create_run, 201),
    "start_capture_session": (_post_start_capture, 201),
    "batch_run_status": (_post_batch_status, 200),
    "bulk_run_tags": (_post_bulk_tags, 200),
}


@pytest.mark.parametrize("route", list(_ROUTES))
async def test_route_with_same_key_replays_and_executes_once(
    client, editor, project_id, pgsql, route
):
    prepare, status = _ROUTES[route]
    url, body = await prepare(client, editor, project_id)
    audit_before = count(pgsql, "audit_log")
    first = await client.post(url, json=body, headers=keyed(editor, "op-1"))
    assert first.status == status, await first.text()
    audit_after = count(pgsql, "audit_log")
    assert audit_after > audit_before
    again = await client.post(url, json=body, headers=keyed(editor, "op-1"))
    assert again.status == status, await again.text()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == await first.read()
    assert count(pgsql, "audit_log") == audit_after
    reused = await client.post(url, json={**body, "extra": 1}, headers=keyed(editor, "op-1"))
    await assert_problem(reused, 422, "idempotency_key_reused")


@pytest.mark.parametrize("route", list(_ROUTES))
async def test_route_concurrently_with_one_key_executes_once(
    client, editor, project_id, pgsql, route
):
    prepare, status = _ROUTES[route]
    url, body = await prepare(client, editor, project_id)
    audit_before = count(pgsql, "audit_log")
    responses = await asyncio.gather(
        *(client.post(url, json=body, headers=keyed(editor, "op-race")) for _ in range(20))
    )
    # Duplicates wait for the first and get its answer: one execution, twenty equal answers.
    assert [response.status for response in responses] == [status] * 20
    assert len({await response.read() for response in responses}) == 1
    executions = count(pgsql, "audit_log") - audit_before
    assert executions == (2 if route in ("batch_run_status", "bulk_run_tags") else 1)


async def test_batch_status_replay_after_refusal_and_fix(client, editor, project_id, pgsql):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run(client, editor, experiment["id"])
    body = {"run_ids": [run["id"]], "status": "succeeded"}
    response = await client.post("/api/v1/runs:batch-status", json=body, headers=keyed(editor, "b"))
    problem = await assert_problem(response, 409, "batch_failed")
    assert problem["errors"][0]["code"] == "invalid_transition"
    await set_run_status(client, editor, run["id"], "running")
    response = await client.post("/api/v1/runs:batch-status", json=body, headers=keyed(editor, "b"))
    assert response.status == 200, await response.text()
    assert (await response.json())["items"][0]["status"] == "succeeded"


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "x" * 300, "ключ", "clé-1", "two words", "tab\there"],
    ids=["empty", "256-chars", "300-chars", "cyrillic", "latin-accent", "space", "tab"],
)
async def test_invalid_key_is_rejected(client, editor, project_id, pgsql, key):
    body = {"project_id": str(project_id), "name": "x"}
    response = await client.post(
        "/api/v1/experiments",
        json=body,
        headers={**editor.headers, "Idempotency-Key": key},
    )
    await assert_problem(response, 400, "invalid_idempotency_key")
    assert count(pgsql, "experiments") == 0


async def test_key_of_255_printable_characters_is_accepted(client, editor, project_id):
    key = ("!~" * 128)[:255]
    body = {"project_id": str(project_id), "name": "x"}
    for replayed in (False, True):
        response = await client.post("/api/v1/experiments", json=body, headers=keyed(editor, key))
        assert response.status == 201, await response.text()
        assert ("Idempotent-Replayed" in response.headers) is replayed


async def test_invalid_key_on_capture_start_is_rejected(client, editor, project_id, pgsql):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    response = await client.post(
        f"/api/v1/runs/{run['id']}/capture-sessions", json={}, headers=keyed(editor, "")
    )
    await assert_problem(response, 400, "invalid_idempotency_key")
    assert count(pgsql, "capture_sessions") == 0
    await start_capture(client, editor, run["id"])


async def test_purge_expired_deletes_only_answers_past_their_time(
    client, editor, project_id, pgsql
):
    body = {"project_id": str(project_id), "name": "kept"}
    for key in ("old", "fresh"):
        response = await client.post("/api/v1/experiments", json=body, headers=keyed(editor, key))
        assert response.status == 201
    cursor = pgsql["experiment"].cursor()
    cursor.execute(
        "UPDATE request_idempotency SET expires_at = now() - interval '1 second' WHERE key = 'old'"
    )

    purged = await purge_expired(client.app[DATABASE].pool)

    assert purged == 1
    cursor.execute("SELECT key FROM request_idempotency")
    assert [row[0] for row in cursor.fetchall()] == ["fresh"]
