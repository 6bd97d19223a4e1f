"""Project deletion survives the death of the process carrying it out: a `python -m
experiment_service.workers` process is SIGKILLed in the middle of the job `projects.delete_data`
(a deletion paced to last a few seconds), and another one, once the dead one's lease has run
out, deletes what is left and finishes it."""

from datetime import UTC, datetime

import pytest

from experiment_service.app import create_app
from experiment_service.appkeys import ARTIFACTS
from telemetry_ingest_service.app import create_app as create_ingest_app
from telemetry_ingest_service.appkeys import JOB_RUNNER as INGEST_JOB_RUNNER
from tests.experiment.deletion_kit import announce, count, deletion_row, populate, rows_of
from tests.experiment.dispatcher_process import DispatcherProcess
from tests.experiment.factories import expect
from tests.plugins.waiting import eventually
from tests.telemetry_ingest.ingest_api import accepted, batch, readings_at, send

# Each job but the deletion is due once, at start; the deletion deletes two rows per chunk and
# pauses 20 ms between chunks, so that it lasts long enough to be killed in the middle.
PROCESS_SETTINGS = {
    "jobs_enabled": "true",
    "webhook_dispatcher_enabled": "false",
    "jobs_poll_interval": 0.05,
    "jobs_lease_seconds": 1.0,
    "idempotency_purge_interval": 3600,
    "stale_runs_interval": 3600,
    "capture_upkeep_interval": 3600,
    "sensor_status_interval": 3600,
    "retention_interval": 3600,
    "project_deletion_interval": 3600,
    "project_deletion_chunk": 2,
    "project_deletion_pause": 0.02,
}


@pytest.fixture
async def api(pgsql, auth_stub, aiohttp_client, make_settings, clock, mockserver_host):
    settings = make_settings("experiment", webhook_allowed_hosts=(mockserver_host,))
    return await aiohttp_client(create_app(settings, clock=clock))


@pytest.fixture
async def ingest(pgsql, aiohttp_client, make_settings, clock):
    return await aiohttp_client(create_ingest_app(make_settings("telemetry_ingest"), clock=clock))


@pytest.fixture
def workers(database_url, mockserver_host, tmp_path):
    made: list[DispatcherProcess] = []

    def make(name: str) -> DispatcherProcess:
        process = DispatcherProcess(
            database_url("experiment"),
            mockserver_host,
            tmp_path / f"{name}.log",
            **PROCESS_SETTINGS,
        )
        made.append(process)
        return process

    yield make
    for process in made:
        code = process.terminate()
        print(f"=== {process.log.name} (exit {code})\n{process.log_text()[-3000:]}")


async def test_a_deletion_killed_midway_is_finished_by_another_process(
    api, ingest, auth_stub, auth_signing_key, owner, project_id, receiver, pgsql, workers
):
    world = await populate(api, ingest, auth_stub, owner, project_id, receiver().url, runs=2)
    before = rows_of(pgsql, world)
    first = workers("first")
    first.spawn()
    await eventually(
        lambda: count(pgsql, "SELECT count(*) FROM job_runs WHERE job = 'projects.delete_data'"),
        within=30,
        what="the first process to run its jobs once",
    )

    await announce(api, auth_signing_key, project_id)

    async def refused() -> bool:
        return (await send(ingest, world.own["token"], batch(world.own, []))).status == 401

    await eventually(refused, what="the project's sensor to be refused")
    now = datetime.now(UTC)
    for sensor in (world.shared_out, world.shared_in):
        await accepted(ingest, sensor["token"], batch(sensor, readings_at(now, 7.0)))

    def halfway() -> bool:
        left = rows_of(pgsql, world)
        return left.get("webhook_deliveries", 0) < before["webhook_deliveries"] and "runs" in left

    await eventually(halfway, within=30, interval=0.01, what="the deletion to be under way")
    first.kill()
    print("killed at", datetime.now(UTC) - now)
    left = rows_of(pgsql, world)
    assert "runs" in left, left
    assert deletion_row(pgsql, project_id)["finished_at"] is None

    second = workers("second")
    second.spawn()
    await eventually(
        lambda: deletion_row(pgsql, project_id)["finished_at"] is not None,
        within=60,
        interval=0.1,
        what="the second process to finish the deletion",
    )
    print("finished at", datetime.now(UTC) - now)
    await ingest.app[INGEST_JOB_RUNNER].run_due()
    while await api.app[ARTIFACTS].empty_trash():
        pass

    assert rows_of(pgsql, world) == {}
    assert deletion_row(pgsql, project_id)["result"]["runs"] == 2
    moved = await expect(
        await api.get(
            f"/api/v1/sensors/{world.shared_out['id']}", headers=world.other_owner.headers
        ),
        200,
    )
    assert moved["project_id"] == str(world.other_id)
    for sensor in (world.shared_out, world.shared_in):
        await accepted(ingest, sensor["token"], batch(sensor, readings_at(now, 8.0)))
        assert (
            count(
                pgsql, "SELECT count(*) FROM telemetry_records WHERE sensor_id = %s", sensor["id"]
            )
            == 5
        )
