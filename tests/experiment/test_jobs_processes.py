"""Two `python -m experiment_service.workers` processes started at once on one database, each
with the job runner: every due job runs exactly once, and so does each of its effects (one stale
run failed, one capture stopped, one sensor announced offline). The state the jobs act on is set
up through the API and then dated back in the database (the processes run on the real clock)."""

import asyncio
from collections import Counter

import pytest

from tests.experiment.dispatcher_process import DispatcherProcess
from tests.experiment.factories import create_experiment, create_run_in_status, expect
from tests.experiment.job_kit import audit_of, job_list, job_runs
from tests.experiment.webhook_kit import delivery_rows, subscribe
from tests.plugins.waiting import eventually
from tests.telemetry_ingest.ingest_api import create_sensor

BULK = 300
JOBS = {
    "idempotency_keys.purge",
    "runs.fail_stale",
    "capture_sessions.reconcile",
    "sensors.watch_status",
}
# Long intervals: within the test each job is due once, at the processes' start.
PROCESS_SETTINGS = {
    "jobs_enabled": "true",
    "webhook_dispatcher_enabled": "false",
    "jobs_poll_interval": 0.05,
    "idempotency_purge_interval": 3600,
    "stale_runs_interval": 3600,
    "capture_upkeep_interval": 3600,
    "sensor_status_interval": 3600,
}


def backdate(pgsql, sql: str, *params) -> None:
    """A change in the database's past (triggers off for it: they would date it now)."""
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture
async def runners(database_url, mockserver_host, tmp_path):
    made: list[DispatcherProcess] = []
    for n in range(2):
        made.append(
            DispatcherProcess(
                database_url("experiment"),
                mockserver_host,
                tmp_path / f"workers-{n}.log",
                **PROCESS_SETTINGS,
            )
        )
    yield made
    for process in made:
        code = await process.stop()
        print(f"=== {process.log.name} (exit {code})\n{process.log_text()[-4000:]}")
        assert code == 0


async def test_two_runner_processes_do_each_job_once(
    jobs_app, operator, owner, editor, project_id, mockserver_host, receiver, pgsql, runners
):
    client = await jobs_app(webhook_allowed_hosts=(mockserver_host,))
    hook = receiver()
    await subscribe(client, editor, project_id, hook.url, ["*"])
    experiment = await create_experiment(client, editor, project_id, name="tunnel")
    stale = await create_run_in_status(client, editor, experiment["id"], "running")
    timed = await create_run_in_status(client, editor, experiment["id"], "running")
    session = await expect(
        await client.post(
            f"/api/v1/runs/{timed['id']}/capture-sessions",
            json={"duration_seconds": 3600},
            headers=editor.headers,
        ),
        201,
    )
    sensor = await create_sensor(client, editor, project_id)
    backdate(
        pgsql, "UPDATE runs SET updated_at = now() - interval '2 days' WHERE id = %s", stale["id"]
    )
    backdate(
        pgsql,
        "UPDATE capture_sessions SET planned_stop_at = now() - interval '1 minute',"
        " started_at = now() - interval '61 minutes' WHERE id = %s",
        session["id"],
    )
    backdate(
        pgsql,
        "UPDATE sensors SET last_heartbeat = now() - interval '1 hour', reachability = 'online'"
        " WHERE id = %s",
        sensor["id"],
    )
    # Many more stale runs, so that failing them takes a while: a second runner claiming the job
    # meanwhile would run it again.
    backdate(
        pgsql,
        "INSERT INTO runs (experiment_id, project_id, name, status, started_at, created_by,"
        " created_at, updated_at)"
        " SELECT %s, %s, 'bulk ' || n, 'running', now() - interval '3 days', %s,"
        " now() - interval '3 days', now() - interval '3 days' FROM generate_series(1, %s) n",
        experiment["id"],
        str(project_id),
        str(editor.id),
        BULK,
    )
    before = Counter(row["type"] for row in delivery_rows(pgsql))

    for process in runners:
        process.spawn()

    async def all_ran() -> bool:
        return {
            name for name, job in (await job_list(client, operator)).items() if job["last_run"]
        } >= JOBS

    await eventually(all_ran, within=30, what="every job to run once")
    await asyncio.sleep(0.5)  # a second run, were there one, would show now

    for name in JOBS:
        runs = await job_runs(client, operator, name)
        assert [run["status"] for run in runs] == ["succeeded"], (name, runs)
    assert (await job_runs(client, operator, "runs.fail_stale"))[0]["result"] == {
        "failed": 1 + BULK
    }
    reconciled = (await job_runs(client, operator, "capture_sessions.reconcile"))[0]
    assert reconciled["result"] == {"stopped": 1, "closed": 0}
    watched = (await job_runs(client, operator, "sensors.watch_status"))[0]
    assert watched["result"]["offline"] == 1

    failed = await expect(
        await client.get(f"/api/v1/runs/{stale['id']}", headers=editor.headers), 200
    )
    assert failed["failure_reason"] == "stale"
    job_entries = [
        e for e in await audit_of(client, owner, project_id, stale["id"]) if e["actor_id"] is None
    ]
    assert [e["action"] for e in job_entries] == ["run.status_changed"]
    session_entries = await audit_of(client, owner, project_id, session["id"])
    assert [e["action"] for e in session_entries].count("capture_session.stopped") == 1
    queued = Counter(row["type"] for row in delivery_rows(pgsql)) - before
    assert queued == {
        "run.finished": 1 + BULK,
        "run.failed": 1 + BULK,
        "capture_session.stopped": 1,
        "sensor.offline": 1,
    }
