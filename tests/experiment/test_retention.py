"""Retention jobs on the test's clock: audit rows after AUDIT_RETENTION_DAYS (400 by default),
webhook events (with deliveries and attempts) after WEBHOOK_RETENTION_DAYS once every delivery
is over, job history after JOB_HISTORY_DAYS (each job's last run stays)."""

import psycopg2
import pytest

from tests.experiment.factories import create_experiment, expect
from tests.experiment.job_kit import audit_of, hooked, job_runs, run_jobs
from tests.experiment.webhook_kit import deliveries, subscribe
from tests.plugins.waiting import eventually

DAY = 86400


async def test_audit_rows_are_kept_400_days_by_default(jobs_app, owner, project_id, clock, pgsql):
    client = await jobs_app()
    old = await create_experiment(client, owner, project_id)
    clock.advance(399 * DAY)
    assert (await run_jobs(client))["audit_log.purge"].result == {"deleted": 0}
    assert len(await audit_of(client, owner, project_id, old["id"])) == 1

    clock.advance(2 * DAY)
    assert (await run_jobs(client))["audit_log.purge"].result == {"deleted": 1}
    assert await audit_of(client, owner, project_id, old["id"]) == []
    # Still append-only for everyone else.
    newer = await create_experiment(client, owner, project_id)
    with pytest.raises(psycopg2.Error, match="append-only"), pgsql["experiment"].cursor() as cur:
        cur.execute("DELETE FROM audit_log WHERE entity_id = %s", (newer["id"],))
    assert len(await audit_of(client, owner, project_id, newer["id"])) == 1


async def test_audit_retention_is_a_setting(jobs_app, owner, project_id, clock):
    client = await jobs_app(audit_retention_days=30)
    old = await create_experiment(client, owner, project_id)
    clock.advance(31 * DAY)
    assert (await run_jobs(client))["audit_log.purge"].result == {"deleted": 1}
    assert await audit_of(client, owner, project_id, old["id"]) == []


async def test_webhook_events_go_after_their_days_once_delivered(
    jobs_app, mockserver_host, receiver, editor, project_id, clock
):
    client = await jobs_app(webhook_backoff_base=3600, **hooked(mockserver_host))
    good, failing = receiver(), receiver(answers=[500])
    delivered = await subscribe(client, editor, project_id, good.url, ["experiment.archived"])
    retried = await subscribe(client, editor, project_id, failing.url, ["experiment.archived"])
    experiment = await create_experiment(client, editor, project_id)
    await expect(
        await client.patch(
            f"/api/v1/experiments/{experiment['id']}",
            json={"status": "archived"},
            headers=editor.headers,
        ),
        200,
    )
    await good.wait_for(1)
    await failing.wait_for(1)

    async def settled() -> bool:
        first = await deliveries(client, editor, delivered["id"])
        second = await deliveries(client, editor, retried["id"])
        return first[0]["status"] == "delivered" and second[0]["status"] == "failed"

    await eventually(settled, what="one delivered, one failed")
    clock.advance(29 * DAY)
    assert (await run_jobs(client))["webhook_events.purge"].result == {"deleted": 0}
    clock.advance(2 * DAY)
    # The event still has a delivery to retry: kept, with both deliveries.
    assert (await run_jobs(client))["webhook_events.purge"].result == {"deleted": 0}
    assert len(await deliveries(client, editor, delivered["id"])) == 1


async def test_delivered_webhook_events_are_purged(
    jobs_app, mockserver_host, receiver, editor, project_id, clock
):
    client = await jobs_app(**hooked(mockserver_host))
    hook = receiver()
    webhook = await subscribe(client, editor, project_id, hook.url, ["experiment.archived"])
    experiment = await create_experiment(client, editor, project_id)
    await expect(
        await client.patch(
            f"/api/v1/experiments/{experiment['id']}",
            json={"status": "archived"},
            headers=editor.headers,
        ),
        200,
    )
    await hook.wait_for(1)

    async def delivered() -> bool:
        return (await deliveries(client, editor, webhook["id"]))[0]["status"] == "delivered"

    await eventually(delivered, what="the delivery")
    clock.advance(31 * DAY)
    assert (await run_jobs(client))["webhook_events.purge"].result == {"deleted": 1}
    assert await deliveries(client, editor, webhook["id"]) == []


async def test_job_history_keeps_its_days_and_each_jobs_last_run(jobs_app, operator, clock):
    client = await jobs_app()
    for _ in range(3):
        await run_jobs(client)
        clock.advance(3600)
    assert len(await job_runs(client, operator, "idempotency_keys.purge")) == 3
    clock.advance(31 * DAY)
    outcome = (await run_jobs(client))["job_runs.purge"]
    assert outcome.result["deleted"] > 0
    # The sensor watch ran (a fourth time) before the purge: only that run is left. A job
    # recording its fourth run while the purge ran keeps its third as its last until then.
    (run,) = await job_runs(client, operator, "sensors.watch_status")
    assert run["started_at"].replace("Z", "+00:00") == clock().isoformat()
    assert 1 <= len(await job_runs(client, operator, "idempotency_keys.purge")) <= 2
