"""The dispatcher as its own process (`python -m experiment_service.workers`): killed after
claiming, paused past its lease, and two of them sharing 1,000 events."""

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from backend_common.db import create_pool
from experiment_service.domain.models import Run
from experiment_service.domain.webhooks import outbox
from tests.experiment.dispatcher_process import DispatcherProcess
from tests.experiment.factories import create_experiment, create_run
from tests.experiment.webhook_kit import delivery_rows, subscribe
from tests.plugins.waiting import eventually


@pytest.fixture
async def dispatchers(database_url, mockserver_host, tmp_path):
    """Makes dispatcher processes (not started); stops those still running at the end and
    prints their logs' tails (shown for a failed test)."""
    made: list[DispatcherProcess] = []

    def make(**settings) -> DispatcherProcess:
        process = DispatcherProcess(
            database_url("experiment"),
            mockserver_host,
            tmp_path / f"dispatcher-{len(made)}.log",
            **settings,
        )
        made.append(process)
        return process

    yield make
    for process in made:
        code = await process.stop()
        print(f"=== {process.log.name} (exit {code})\n{process.log_text()[-4000:]}")


@pytest.fixture
async def quiet(make_hooks_client):
    """The experiment API with its own dispatcher off: only the processes under test send."""
    return await make_hooks_client(webhook_dispatcher_enabled=False)


def attempts_of(pgsql, delivery_id: str) -> list[dict]:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT attempt, status_code, error, superseded FROM webhook_attempts"
            " WHERE delivery_id = %s ORDER BY id",
            (delivery_id,),
        )
        return [dict(row) for row in cursor]


async def test_claim_of_a_killed_dispatcher_is_delivered_after_its_lease(
    quiet, pgsql, mockserver, editor, project_id, receiver, dispatchers
):
    release = asyncio.Event()

    async def hold(call):
        await release.wait()
        return mockserver.make_response("ok", status=200)

    hook = receiver(answers=[hold, 200])
    await subscribe(quiet, editor, project_id, hook.url, ["run.created"])
    first, second = dispatchers(), dispatchers()
    await first.start()
    experiment = await create_experiment(quiet, editor, project_id)
    await create_run(quiet, editor, experiment["id"])
    await hook.wait_for(1)
    (claimed,) = delivery_rows(pgsql)
    assert claimed["status"] == "delivering"

    first.kill()  # after the claim, before the outcome is recorded
    release.set()
    await second.start()

    calls = await hook.wait_for(2, within=15)
    (row,) = await eventually(lambda: delivery_rows(pgsql, "d.status = 'delivered'"))
    assert calls[0].event_id == calls[1].event_id == row["event_id"]
    assert calls[1].at - calls[0].at >= 2.0 - 0.3  # not before the lease ran out
    assert row["lease_token"] is None
    assert [(a["attempt"], a["status_code"]) for a in attempts_of(pgsql, row["id"])] == [(2, 200)]
    await hook.stays_at(2, wait=0.5)


async def test_paused_dispatcher_cannot_record_over_a_newer_claim(
    quiet, pgsql, mockserver, editor, project_id, receiver, dispatchers
):
    first, second = dispatchers(), dispatchers()
    release = asyncio.Event()

    async def pause_sender(call):
        first.pause()  # it has sent; it will read this answer only when resumed
        return mockserver.make_response("ok", status=200)

    async def hold(call):
        await release.wait()
        return mockserver.make_response("ok", status=200)

    hook = receiver(answers=[pause_sender, hold])
    await subscribe(quiet, editor, project_id, hook.url, ["run.created"])
    await first.start()
    experiment = await create_experiment(quiet, editor, project_id)
    await create_run(quiet, editor, experiment["id"])
    await hook.wait_for(1)
    (old_claim,) = delivery_rows(pgsql)

    await second.start()
    await hook.wait_for(2, within=15)  # the second claimed it after the lease and is sending
    (new_claim,) = delivery_rows(pgsql)
    assert new_claim["status"] == "delivering"
    assert new_claim["lease_token"] != old_claim["lease_token"]

    first.resume()
    superseded = await eventually(
        lambda: [a for a in attempts_of(pgsql, new_claim["id"]) if a["superseded"]],
        what="the paused dispatcher's late outcome",
    )
    assert len(superseded) == 1
    (still,) = delivery_rows(pgsql)
    assert still["status"] == "delivering"
    assert still["lease_token"] == new_claim["lease_token"]
    # The log line follows the attempt row: it may be read a moment later.
    await eventually(lambda: first.count("webhook_lease_lost") == 1, what="the lease-lost line")

    release.set()
    (done,) = await eventually(lambda: delivery_rows(pgsql, "d.status = 'delivered'"))
    log = attempts_of(pgsql, done["id"])
    assert [a["superseded"] for a in log] == [True, False]
    assert log[1]["status_code"] == 200
    assert hook.calls[0].event_id == hook.calls[1].event_id


async def test_two_dispatchers_deliver_a_thousand_events_each_once(
    quiet, pgsql, database_url, mockserver, editor, project_id, receiver, dispatchers
):
    sending: Counter[str] = Counter()
    overlaps: list[str] = []

    async def track(call):
        if sending[call.event_id]:
            overlaps.append(call.event_id)
        sending[call.event_id] += 1
        try:
            await asyncio.sleep(0.002)
            return mockserver.make_response("ok", status=200)
        finally:
            sending[call.event_id] -= 1

    hook = receiver(answers=[track])
    await subscribe(quiet, editor, project_id, hook.url, ["run.created"])
    # A loaded machine may answer a send slower than the usual 1 s timeout: a timed-out send
    # is retried and received twice, which is not what this test is about.
    pair = [
        dispatchers(webhook_lease_seconds=60, webhook_timeout=30, webhook_target_concurrency=16)
        for _ in "ab"
    ]
    for process in pair:
        await process.start()

    now = datetime.now(UTC)
    pool = await create_pool(database_url("experiment"), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            for n in range(1000):
                run = Run(
                    id=uuid.uuid4(), experiment_id=uuid.uuid4(), project_id=project_id,
                    name=f"run {n}", params={}, git_sha=None, env={}, tags=[], notes="",
                    metadata={}, status="draft", started_at=None, finished_at=None,
                    duration_seconds=None, created_by=editor.id, created_at=now, updated_at=now,
                )  # fmt: skip
                await outbox.emit(
                    conn, event_type="run.created", project_id=project_id, entity=run,
                    caller=None, role=None,
                )  # fmt: skip
        event_ids = {str(r["id"]) for r in await pool.fetch("SELECT id FROM webhook_events")}
    finally:
        await pool.close()

    await hook.wait_for(1000, within=60)
    await eventually(lambda: len(delivery_rows(pgsql, "d.status = 'delivered'")) == 1000, within=30)
    await hook.stays_at(1000, wait=0.5)
    received = Counter(call.event_id for call in hook.calls)
    assert set(received) == event_ids
    assert max(received.values()) == 1
    assert overlaps == []
    assert all(process.count("webhook_attempt") > 0 for process in pair), "both took part"
    assert sum(process.count("webhook_attempt") for process in pair) == 1000
