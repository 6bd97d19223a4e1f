"""A backfill whose workers process is SIGKILLed in the middle: the chunks its two lanes
committed stay (with their slices' cursors past them), and another process finishes it, every
reading converted once, by the right profile."""

from datetime import timedelta

import pytest

from tests.plugins.waiting import eventually
from tests.telemetry_ingest.backfill_kit import backfill_publish, conversions
from tests.telemetry_ingest.ingest_api import accepted, batch, create_sensor, linear, readings_at
from tests.telemetry_ingest.workers_process import TelemetryWorkers

READINGS = 600
# The backfill converts five readings per chunk in two lanes, each pausing 20 ms between chunks
# (about two seconds in all), so that the kill lands in the middle; 599 readings make twelve
# slices of ten chunks at most. The other jobs are due once, at start.
PROCESS_SETTINGS = {
    "jobs_enabled": "true",
    "jobs_poll_interval": 0.05,
    "jobs_lease_seconds": 1.0,
    "storage_upkeep_interval": 3600,
    "deleted_sensors_interval": 3600,
    "backfill_interval": 3600,
    "backfill_chunk": 5,
    "backfill_lanes": 2,
    "backfill_pause": 0.02,
}


@pytest.fixture
def workers(database_url, tmp_path):
    made: list[TelemetryWorkers] = []

    def make(name: str) -> TelemetryWorkers:
        process = TelemetryWorkers(
            database_url("experiment"), tmp_path / f"{name}.log", **PROCESS_SETTINGS
        )
        made.append(process)
        return process

    yield make
    for process in made:
        code = process.terminate()
        print(f"=== {process.log.name} (exit {code})\n{process.log_text()[-3000:]}")


def backfill_row(pgsql, backfill_id) -> dict:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT status, rows_total, rows_done FROM conversion_backfills WHERE id = %s",
            (backfill_id,),
        )
        return dict(cursor.fetchone())


def slices(pgsql, backfill_id) -> list[tuple]:
    """(range_from, range_to, cursor_timestamp, finished) of the backfill's slices, in order."""
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT range_from, range_to, cursor_timestamp, finished"
            " FROM conversion_backfill_slices WHERE backfill_id = %s ORDER BY slice",
            (backfill_id,),
        )
        return [tuple(row) for row in cursor]


def done_by_cursors(cut: list[tuple], instant) -> bool:
    """Whether the slice of `instant` had converted it: finished, or its cursor at or past it."""
    for start, end, cursor, finished in cut:
        if start <= instant and (end is None or instant < end):
            return finished or (cursor is not None and instant <= cursor)
    raise AssertionError(f"no slice holds {instant}")


async def test_a_backfill_killed_midway_is_finished_once_by_another_process(
    api, ingest, owner, project_id, clock, pgsql, workers
):
    t0 = clock.now
    sensor = await create_sensor(api, owner, project_id, profile=linear(2.0))
    values = [float(n) for n in range(READINGS)]
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(t0, *values, step=0.5)))
    clock.advance(3600)
    published = await backfill_publish(
        api, owner, sensor["id"], linear(10.0, 1.0, version="b"), t0 + timedelta(seconds=0.5)
    )
    backfill_id = published["backfill_id"]
    first = workers("first")
    first.spawn()

    def some_done() -> bool:
        assert first.alive, first.log_text()
        return backfill_row(pgsql, backfill_id)["rows_done"] >= 100

    await eventually(some_done, within=30, interval=0.02, what="a few chunks")
    first.kill()

    # Killed mid-way: the readings up to each slice's cursor are converted by the new profile,
    # the others not yet, and the count says how many. Both lanes had slices of their own.
    midway = backfill_row(pgsql, backfill_id)
    assert midway["status"] == "running"
    assert 100 <= midway["rows_done"] < READINGS - 1
    cut = slices(pgsql, backfill_id)
    assert len(cut) == 12
    assert len([piece for piece in cut if piece[2] is not None]) >= 2
    rows = conversions(pgsql, sensor["id"])[1:]  # the first reading is before the range
    assert [row[3] == published["id"] for row in rows] == [
        done_by_cursors(cut, row[0]) for row in rows
    ]
    assert sum(row[3] == published["id"] for row in rows) == midway["rows_done"]

    second = workers("second")
    second.spawn()

    def finished() -> bool:
        assert second.alive, second.log_text()
        return backfill_row(pgsql, backfill_id)["status"] == "succeeded"

    await eventually(finished, within=60, interval=0.05, what="the backfill to finish")

    done = backfill_row(pgsql, backfill_id)
    assert done["rows_done"] == done["rows_total"] == READINGS - 1
    assert all(piece[3] for piece in slices(pgsql, backfill_id))
    a = sensor["active_profile_id"]
    assert [row[1:] for row in conversions(pgsql, sensor["id"])] == [("ok", 0.0, a)] + [
        ("ok", 10.0 * value + 1.0, published["id"]) for value in values[1:]
    ]
