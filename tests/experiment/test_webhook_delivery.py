"""Webhook delivery through the dispatcher task of the experiment app, to receivers on the
mockserver: signatures, the event filter, the outbox's transaction, retries on the app's clock,
dead deliveries, redelivery, 410, redirects, the SSRF guard at delivery time, per-target limits."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from backend_common.db import create_pool
from experiment_service.domain.models import Run
from experiment_service.domain.webhooks import outbox
from tests.experiment.factories import (
    create_experiment,
    create_run,
    expect,
    set_run_status,
)
from tests.experiment.webhook_kit import (
    count_rows,
    deliveries,
    delivery_rows,
    hook_url,
    signature_ok,
    subscribe,
)
from tests.plugins.waiting import eventually


async def delivered(client, user, webhook_id, count: int) -> list[dict]:
    """The subscription's deliveries, once `count` of them are delivered (oldest first)."""

    async def fetch() -> list[dict]:
        items = await deliveries(client, user, webhook_id, status="delivered")
        return items[::-1] if len(items) >= count else []

    return await eventually(fetch)


async def first_failed(client, user, webhook_id) -> dict:
    async def fetch() -> list[dict]:
        return await deliveries(client, user, webhook_id, status="failed")

    return (await eventually(fetch))[0]


async def test_run_created_is_delivered_with_a_valid_signature(
    hooks, pgsql, editor, project_id, receiver
):
    hook = receiver()
    sub = await subscribe(hooks, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)

    run = await create_run(hooks, editor, experiment["id"], name="baseline")

    (call,) = await hook.wait_for(1)
    assert signature_ok(sub["secret"], call)
    assert not signature_ok("whsec_" + "A" * 44, call)
    body = call.json
    assert body["type"] == "run.created" == call.headers["etp-event-type"]
    assert body["id"] == call.event_id
    assert body["project_id"] == str(project_id)
    assert body["actor"] == {"user_id": str(editor.id), "role": "editor"}
    assert body["data"] == run
    assert datetime.fromisoformat(body["occurred_at"]) <= datetime.now(UTC)
    assert call.headers["content-type"] == "application/json"
    # Read by an editor: viewers get no response bodies (test_security_webhook_visibility).
    (delivery,) = await delivered(hooks, editor, sub["id"], 1)
    assert delivery["event_id"] == call.event_id
    assert delivery["event_type"] == "run.created"
    assert delivery["attempts"] == 1
    (attempt,) = delivery["attempt_log"]
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert attempt["response_body"] == "ok"
    assert attempt["latency_ms"] >= 0
    assert attempt["superseded"] is False
    assert delivery_rows(pgsql)[0]["lease_token"] is None


async def test_events_reach_only_subscriptions_that_ask_for_them(
    hooks, editor, project_id, receiver, auth_stub
):
    started_only, everything = receiver(), receiver()
    elsewhere = receiver()
    await subscribe(hooks, editor, project_id, started_only.url, ["run.started"])
    await subscribe(hooks, editor, project_id, everything.url, ["*"])
    other_project = uuid.uuid4()
    other_editor = auth_stub.member(other_project, "editor")
    await subscribe(hooks, other_editor, other_project, elsewhere.url, ["*"])
    experiment = await create_experiment(hooks, editor, project_id)

    run = await create_run(hooks, editor, experiment["id"])
    await set_run_status(hooks, editor, run["id"], "running")

    # Deliveries to one target run in parallel, so their order is not promised.
    assert sorted(c.event_type for c in await everything.wait_for(2)) == [
        "run.created",
        "run.started",
    ]
    assert [c.event_type for c in await started_only.wait_for(1)] == ["run.started"]
    await started_only.stays_at(1, wait=0.3)
    await elsewhere.stays_at(0, wait=0)


async def test_each_kind_of_change_emits_its_event(hooks, editor, owner, project_id, receiver):
    hook = receiver()
    await subscribe(hooks, editor, project_id, hook.url, ["*"])
    experiment = await create_experiment(hooks, editor, project_id)
    run = await create_run(hooks, editor, experiment["id"])
    await set_run_status(hooks, editor, run["id"], "running")
    session = await expect(
        await hooks.post(
            f"/api/v1/runs/{run['id']}/capture-sessions", json={}, headers=editor.headers
        ),
        201,
    )
    await expect(
        await hooks.post(
            f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}/stop",
            json={},
            headers=editor.headers,
        ),
        200,
    )
    await expect(
        await hooks.patch(
            f"/api/v1/runs/{run['id']}", json={"tags": ["a"]}, headers=editor.headers
        ),
        200,
    )
    await set_run_status(hooks, editor, run["id"], "failed")
    await set_run_status(hooks, editor, run["id"], "archived")
    await expect(
        await hooks.patch(
            f"/api/v1/experiments/{experiment['id']}",
            json={"status": "archived"},
            headers=editor.headers,
        ),
        200,
    )
    sensor = await expect(
        await hooks.post(
            "/api/v1/sensors",
            json={
                "project_id": str(project_id),
                "name": "probe",
                "type": "pressure",
                "input_unit": "V",
                "display_unit": "Pa",
                "conversion_profile": {"version": "v1", "kind": "linear", "payload": {"a": 2}},
            },
            headers=editor.headers,
        ),
        201,
    )
    await expect(
        await hooks.post(
            f"/api/v1/sensors/{sensor['id']}/rotate-token", json={}, headers=owner.headers
        ),
        200,
    )
    profile = await expect(
        await hooks.post(
            f"/api/v1/sensors/{sensor['id']}/conversion-profiles",
            json={"version": "v2", "kind": "linear", "payload": {"a": 3}},
            headers=editor.headers,
        ),
        201,
    )
    published = await expect(
        await hooks.post(
            f"/api/v1/sensors/{sensor['id']}/conversion-profiles/{profile['id']}/publish",
            json={},
            headers=editor.headers,
        ),
        200,
    )

    calls = await hook.wait_for(12)
    by_type: dict[str, list[dict]] = {}
    for call in calls:
        by_type.setdefault(call.event_type, []).append(call.json["data"])
    assert {t: len(v) for t, v in by_type.items()} == {
        "run.created": 1,
        "run.started": 1,
        "capture_session.started": 1,
        "capture_session.stopped": 1,
        "run.tags_updated": 1,
        "run.finished": 1,
        "run.archived": 1,
        "experiment.archived": 1,
        "sensor.created": 1,
        "conversion_profile.activated": 2,
        "sensor.token_rotated": 1,
    }
    assert by_type["run.finished"][0]["status"] == "failed"
    assert by_type["capture_session.stopped"][0]["id"] == session["id"]
    assert by_type["experiment.archived"][0]["status"] == "archived"
    assert "token" not in by_type["sensor.created"][0]
    assert "token" not in by_type["sensor.token_rotated"][0]
    assert by_type["sensor.token_rotated"][0]["token_preview"] != sensor["token_preview"]
    assert by_type["conversion_profile.activated"][1] == published
    await hook.stays_at(12, wait=0.2)


async def test_rolled_back_change_emits_no_event(hooks, pgsql, editor, project_id, receiver):
    hook = receiver()
    await subscribe(hooks, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)
    headers = {**editor.headers, "Idempotency-Key": "same-key"}
    url = f"/api/v1/experiments/{experiment['id']}/runs"
    await expect(await hooks.post(url, json={"name": "first"}, headers=headers), 201)

    # The second request creates its run (and event) inside the key's transaction, which is
    # rolled back when the key turns out to be taken.
    refused = await hooks.post(url, json={"name": "second"}, headers=headers)

    await expect(refused, 422)
    await hook.wait_for(1)
    await hook.stays_at(1, wait=0.3)
    assert count_rows(pgsql, "webhook_events") == 1
    assert count_rows(pgsql, "runs") == 1


async def test_event_written_in_a_rolled_back_transaction_is_not_sent(
    hooks, pgsql, database_url, editor, project_id, receiver
):
    hook = receiver()
    await subscribe(hooks, editor, project_id, hook.url, ["run.created"])
    now = datetime.now(UTC)
    run = Run(
        id=uuid.uuid4(), experiment_id=uuid.uuid4(), project_id=project_id, name="ghost",
        params={}, git_sha=None, env={}, tags=[], notes="", metadata={}, status="draft",
        started_at=None, finished_at=None, duration_seconds=None, created_by=editor.id,
        created_at=now, updated_at=now,
    )  # fmt: skip
    pool = await create_pool(database_url("experiment"), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            await outbox.emit(
                conn, event_type="run.created", project_id=project_id, entity=run,
                caller=None, role=None,
            )  # fmt: skip
            assert await conn.fetchval("SELECT count(*) FROM webhook_deliveries") == 1
            await transaction.rollback()
    finally:
        await pool.close()

    await hook.stays_at(0, wait=0.3)
    assert count_rows(pgsql, "webhook_events") == 0


async def test_failing_receiver_is_retried_with_growing_delays_until_dead(
    make_hooks_client, pgsql, clock, editor, viewer, project_id, receiver
):
    client = await make_hooks_client(webhook_max_attempts=4, webhook_backoff_base=10.0)
    hook = receiver(answers=[500])
    sub = await subscribe(client, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(client, editor, project_id)
    await create_run(client, editor, experiment["id"])

    waits = []
    for attempt in range(1, 5):
        await hook.wait_for(attempt)
        (row,) = await eventually(
            lambda attempt=attempt: delivery_rows(
                pgsql, "d.attempts = %s AND d.status <> 'delivering'", (attempt,)
            ),
            what=f"attempt {attempt} recorded",
        )
        if attempt < 4:
            assert row["status"] == "failed"
            wait = row["next_attempt_at"] - row["last_attempt_at"]
            waits.append(wait.total_seconds())
            clock.advance(wait.total_seconds())
        else:
            assert row["status"] == "dead"
            assert row["next_attempt_at"] is None

    # 10 s * 3^(n-1), give or take 25 %: each wait is longer than the one before.
    assert waits == sorted(waits)
    assert len(set(waits)) == 3
    for n, wait in enumerate(waits):
        assert 10 * 3**n * 0.75 <= wait <= 10 * 3**n * 1.25, waits
    clock.advance(10**6)
    await hook.stays_at(4, wait=0.3)
    calls = hook.calls
    assert len({c.event_id for c in calls}) == 1, "every retry carries the same webhook-id"
    (delivery,) = await deliveries(client, viewer, sub["id"])
    assert delivery["status"] == "dead"
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500] * 4
    assert [a["attempt"] for a in delivery["attempt_log"]] == [1, 2, 3, 4]


async def test_receiver_that_times_out_is_retried(
    make_hooks_client, mockserver, clock, editor, viewer, project_id, receiver
):
    client = await make_hooks_client(webhook_timeout=0.2)

    async def too_slow(call):
        await asyncio.sleep(0.6)
        return mockserver.make_response("late", status=200)

    hook = receiver(answers=[too_slow, 200])
    sub = await subscribe(client, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(client, editor, project_id)
    await create_run(client, editor, experiment["id"])
    await hook.wait_for(1)

    delivery = await first_failed(client, viewer, sub["id"])
    (attempt,) = delivery["attempt_log"]
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("timeout")
    assert attempt["latency_ms"] >= 200
    clock.advance(20)
    first, second = await hook.wait_for(2)
    assert first.event_id == second.event_id
    (delivery,) = await delivered(client, viewer, sub["id"], 1)
    assert [a["status_code"] for a in delivery["attempt_log"]] == [None, 200]


async def test_retry_after_is_honoured(hooks, pgsql, mockserver, editor, project_id, receiver):
    async def busy(call):
        return mockserver.make_response("slow down", status=429, headers={"Retry-After": "3600"})

    hook = receiver(answers=[busy])
    await subscribe(hooks, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)
    await create_run(hooks, editor, experiment["id"])
    await hook.wait_for(1)

    (row,) = await eventually(lambda: delivery_rows(pgsql, "d.status = 'failed'"))
    assert row["last_status"] == 429
    assert row["next_attempt_at"] - row["last_attempt_at"] == timedelta(seconds=3600)


async def test_redirect_is_a_failure_and_is_not_followed(
    hooks, mockserver, mockserver_info, editor, viewer, project_id, receiver
):
    elsewhere = receiver()

    async def moved(call):
        return mockserver.make_response("", status=302, headers={"Location": elsewhere.url})

    hook = receiver(answers=[moved])
    sub = await subscribe(hooks, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)
    await create_run(hooks, editor, experiment["id"])
    await hook.wait_for(1)

    delivery = await first_failed(hooks, viewer, sub["id"])
    assert delivery["last_status"] == 302
    await elsewhere.stays_at(0, wait=0.2)


async def test_gone_receiver_disables_the_subscription(
    hooks, pgsql, editor, viewer, project_id, receiver
):
    hook = receiver(answers=[410])
    sub = await subscribe(hooks, editor, project_id, hook.url, ["run.created", "run.started"])
    experiment = await create_experiment(hooks, editor, project_id)
    run = await create_run(hooks, editor, experiment["id"])
    await hook.wait_for(1)

    async def disabled() -> dict | None:
        got = await expect(await hooks.get(hook_url(sub["id"]), headers=viewer.headers), 200)
        return None if got["active"] else got

    got = await eventually(disabled)
    assert got["disabled_reason"] == "The receiver answered 410 Gone."
    (delivery,) = await deliveries(hooks, viewer, sub["id"])
    assert delivery["status"] == "dead"
    await set_run_status(hooks, editor, run["id"], "running")
    await hook.stays_at(1, wait=0.3)
    assert count_rows(pgsql, "webhook_deliveries") == 1

    again = await expect(
        await hooks.patch(hook_url(sub["id"]), json={"active": True}, headers=editor.headers), 200
    )
    assert again["active"] is True
    assert again["disabled_reason"] is None


async def test_redeliver_sends_the_same_event_again(hooks, editor, viewer, project_id, receiver):
    hook = receiver()
    sub = await subscribe(hooks, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)
    await create_run(hooks, editor, experiment["id"])
    (delivery,) = await delivered(hooks, viewer, sub["id"], 1)

    response = await hooks.post(
        f"/api/v1/webhooks/deliveries/{delivery['id']}/redeliver", headers=editor.headers
    )

    queued = await expect(response, 202)
    assert queued["id"] == delivery["id"]
    assert queued["status"] in ("pending", "delivering", "delivered")
    first, second = await hook.wait_for(2)
    assert first.event_id == second.event_id
    assert first.body == second.body
    (delivery,) = await delivered(hooks, viewer, sub["id"], 1)
    assert [a["status_code"] for a in delivery["attempt_log"]] == [200, 200]


async def test_redeliver_while_a_dispatcher_holds_the_delivery_is_refused(
    hooks, pgsql, editor, project_id, receiver
):
    hook = receiver()
    sub = await subscribe(hooks, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)
    await create_run(hooks, editor, experiment["id"])
    await hook.wait_for(1)
    (row,) = await eventually(lambda: delivery_rows(pgsql, "d.status = 'delivered'"))
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "UPDATE webhook_deliveries SET status = 'delivering', lease_token = gen_random_uuid(),"
            " lease_until = now() + interval '1 hour'"
        )

    response = await hooks.post(
        f"/api/v1/webhooks/deliveries/{row['id']}/redeliver", json={}, headers=editor.headers
    )

    await expect(response, 409)
    assert sub["id"] == row["subscription_id"]


async def test_viewer_and_stranger_cannot_redeliver(
    hooks, pgsql, editor, viewer, auth_stub, project_id, receiver
):
    hook = receiver()
    await subscribe(hooks, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)
    await create_run(hooks, editor, experiment["id"])
    await hook.wait_for(1)
    (row,) = await eventually(lambda: delivery_rows(pgsql, "d.status = 'delivered'"))
    url = f"/api/v1/webhooks/deliveries/{row['id']}/redeliver"
    stranger = auth_stub.member(uuid.uuid4(), "owner")

    assert (await hooks.post(url, headers=viewer.headers)).status == 403
    assert (await hooks.post(url, headers=stranger.headers)).status == 404
    missing = f"/api/v1/webhooks/deliveries/{uuid.uuid4()}/redeliver"
    assert (await hooks.post(missing, headers=editor.headers)).status == 404
    await hook.stays_at(1, wait=0.2)


async def test_ping_sends_a_test_event_to_that_subscription_only(
    hooks, editor, project_id, receiver
):
    pinged, other = receiver(), receiver()
    sub = await subscribe(hooks, editor, project_id, pinged.url, ["run.archived"])
    await subscribe(hooks, editor, project_id, other.url, ["*"])

    response = await hooks.post(f"{hook_url(sub['id'])}/ping", headers=editor.headers)

    queued = await expect(response, 202)
    assert queued["event_type"] == "webhook.ping"
    (call,) = await pinged.wait_for(1)
    assert call.json["data"] == {"subscription_id": sub["id"]}
    assert call.event_id == queued["event_id"]
    assert signature_ok(sub["secret"], call)
    await other.stays_at(0, wait=0.2)


async def test_rotated_secret_signs_beside_the_old_one_during_the_grace_period(
    hooks, editor, project_id, receiver
):
    hook = receiver()
    sub = await subscribe(hooks, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)
    rotated = await expect(
        await hooks.post(
            f"{hook_url(sub['id'])}/rotate-secret", json={"grace_seconds": 60},
            headers=editor.headers,
        ),
        200,
    )  # fmt: skip
    await create_run(hooks, editor, experiment["id"])
    (during,) = await hook.wait_for(1)
    assert len(during.headers["webhook-signature"].split()) == 2
    assert signature_ok(rotated["secret"], during)
    assert signature_ok(sub["secret"], during)

    newest = await expect(
        await hooks.post(
            f"{hook_url(sub['id'])}/rotate-secret", json={"grace_seconds": 0},
            headers=editor.headers,
        ),
        200,
    )  # fmt: skip
    await create_run(hooks, editor, experiment["id"])
    _, after = await hook.wait_for(2)
    assert len(after.headers["webhook-signature"].split()) == 1
    assert signature_ok(newest["secret"], after)
    assert not signature_ok(rotated["secret"], after)


async def test_target_is_checked_again_at_delivery_time(
    make_hooks_client, hooks, pgsql, editor, viewer, project_id, receiver
):
    hook = receiver()
    sub = await subscribe(hooks, editor, project_id, hook.url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)
    # Another replica, whose allow-list no longer has the mockserver, and the first one stopped.
    strict = await make_hooks_client(webhook_allowed_hosts=())
    await hooks.close()

    await create_run(strict, editor, experiment["id"])

    (row,) = await eventually(lambda: delivery_rows(pgsql, "d.status = 'failed'"))
    (delivery,) = await deliveries(strict, viewer, sub["id"])
    (attempt,) = delivery["attempt_log"]
    assert attempt["status_code"] is None
    assert "loopback" in attempt["error"], attempt
    assert row["last_status"] is None
    await hook.stays_at(0, wait=0.1)


async def test_slow_receiver_does_not_starve_others(
    make_hooks_client, mockserver, editor, project_id, receiver
):
    client = await make_hooks_client(
        webhook_target_concurrency=2, webhook_timeout=5.0, webhook_lease_seconds=10.0
    )
    release = asyncio.Event()

    async def stuck(call):
        await release.wait()
        return mockserver.make_response("ok", status=200)

    slow, fast = receiver(answers=[stuck]), receiver()
    await subscribe(client, editor, project_id, slow.url, ["run.created"])
    experiment = await create_experiment(client, editor, project_id)
    for _ in range(5):
        await create_run(client, editor, experiment["id"])
    await slow.wait_for(2)
    await subscribe(client, editor, project_id, fast.url, ["run.started"])

    run = await create_run(client, editor, experiment["id"])
    await set_run_status(client, editor, run["id"], "running")

    await fast.wait_for(1)
    assert slow.in_flight == 2
    release.set()
    await slow.wait_for(6)
    assert slow.max_in_flight == 2


async def test_scheduled_profile_is_announced_once_it_becomes_active(
    hooks, clock, editor, project_id, receiver
):
    hook = receiver()
    await subscribe(hooks, editor, project_id, hook.url, ["conversion_profile.activated"])
    sensor = await expect(
        await hooks.post(
            "/api/v1/sensors",
            json={
                "project_id": str(project_id), "name": "probe", "type": "pressure",
                "input_unit": "V", "display_unit": "Pa",
            },
            headers=editor.headers,
        ),
        201,
    )  # fmt: skip
    profiles = f"/api/v1/sensors/{sensor['id']}/conversion-profiles"
    profile = await expect(
        await hooks.post(
            profiles,
            json={"version": "v1", "kind": "linear", "payload": {"a": 2}},
            headers=editor.headers,
        ),
        201,
    )
    starts = clock.now + timedelta(seconds=60)
    await expect(
        await hooks.post(
            f"{profiles}/{profile['id']}/schedule",
            json={"valid_from": starts.isoformat()},
            headers=editor.headers,
        ),
        200,
    )
    await hook.stays_at(0, wait=0.3)

    clock.advance(61)

    (call,) = await hook.wait_for(1)
    assert call.json["data"]["id"] == profile["id"]
    assert call.json["data"]["status"] == "active"
    assert call.json["actor"] is None
    assert datetime.fromisoformat(call.json["occurred_at"]) == starts
    await hook.stays_at(1, wait=0.3)
