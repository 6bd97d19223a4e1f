"""A table conversion profile costs a batch about what a linear one does, whatever its size
(it used to cost a pass over the table per reading: 0.74 s for 10,000 readings and 1,000
points, on the event loop). The service runs in this process: its CPU time is compared, which
other work on a busy machine does not inflate as it does the time on the clock."""

import time
from datetime import timedelta

from backend_common.conversion import MAX_TABLE_POINTS
from tests.telemetry_ingest.ingest_api import accepted, batch, create_sensor, linear, reading

READINGS = 10_000


def table(points: int) -> dict:
    rows = [{"x": float(i), "y": 1.5 * i} for i in range(points)]
    return {"version": "v1", "kind": "table", "payload": {"points": rows}}


async def best_batch_seconds(ingest, sensor, start, rounds: int = 3) -> float:
    """The fastest of `rounds` batches of READINGS readings spread over the table's range."""
    best = float("inf")
    for round_ in range(rounds):
        readings = [
            reading(start + timedelta(milliseconds=round_ * READINGS + i), (i * 7.3) % 1000)
            for i in range(READINGS)
        ]
        began = time.process_time()
        answer = await accepted(ingest, sensor["token"], batch(sensor, readings))
        best = min(best, time.process_time() - began)
        assert answer["converted"] == READINGS
    return best


async def test_a_big_table_profile_costs_a_batch_what_a_linear_one_does(
    api, ingest, owner, project_id, clock
):
    by_line = await create_sensor(api, owner, project_id, profile=linear(a=1.5))
    by_table = await create_sensor(api, owner, project_id, profile=table(MAX_TABLE_POINTS))
    start = clock.now + timedelta(seconds=1)
    clock.advance(3600)

    line = await best_batch_seconds(ingest, by_line, start)
    big = await best_batch_seconds(ingest, by_table, start)

    assert big < 1.5 * line + 0.1, (line, big)
