"""Both storages give the same answers (the TimescaleDB pass only): the same readings go through
the ingest API of an app on the test cluster's hypertable and of an app on a PostgreSQL of the
test's own without the extension (monthly partitions, the schema export as the plain pass loads
it), part of them after the hypertable's chunks were compressed; history, aggregates of every
bucket width and layer, the aligned view and the rollup then match, before and after the rollup
is refreshed."""

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from backend_common.keys import DATABASE
from experiment_service.app import create_app as create_experiment_app
from telemetry_ingest_service.app import create_app as create_ingest_app
from telemetry_ingest_service.domain.rollup import Rollup
from tests.faults.harness import Cluster
from tests.plugins.databases import timescaledb_only
from tests.telemetry_ingest.ingest_api import accepted, batch, create_sensor, linear, reading
from tests.telemetry_ingest.readings_api import AGGREGATE, WIDTHS, aligned, get, history, query

pytestmark = timescaledb_only

SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
CHANNELS = ("a", "b", None)  # None: no meta.signal, the default channel `value`
ROLLUP = """
    SELECT s.ordinal, r.layer, r.signal, r.minute, r.count, r.min, r.max, r.avg, r.twa,
           r.first, r.last, r.first_at
    FROM telemetry_rollup r JOIN unnest($1::uuid[]) WITH ORDINALITY s (id, ordinal)
        ON s.id = r.sensor_id
    ORDER BY 1, 2, 3, 4
"""


@pytest.fixture(scope="module")
def plain_cluster() -> Iterator[Cluster]:
    """A PostgreSQL without TimescaleDB, loaded with the schema export."""
    with Cluster.throwaway() as cluster:
        yield cluster


class Stack:
    """The experiment and ingest apps on one database, and the test's sensors in it."""

    def __init__(self, api, ingest, url: str) -> None:
        self.api, self.ingest, self.url = api, ingest, url
        self.sensors: list[dict[str, Any]] = []

    def anonymous(self, answer: Any) -> Any:
        """The answer with each sensor id replaced by the sensor's place in `sensors`. Answers
        order sensors by id, which differ between the databases: items are put in that place's
        order, each sensor's own in the order answered."""
        if isinstance(answer, list):
            items = [self.anonymous(item) for item in answer]
            if all(isinstance(item, dict) and "sensor_id" in item for item in items):
                items.sort(key=lambda item: item["sensor_id"])
            return items
        if not isinstance(answer, dict):
            return answer
        ordinals = {sensor["id"]: n for n, sensor in enumerate(self.sensors)}
        return {
            key: ordinals[value] if key == "sensor_id" else self.anonymous(value)
            for key, value in answer.items()
        }

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        conn = await asyncpg.connect(self.url)
        try:
            return [dict(row) for row in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    async def fetchval(self, sql: str) -> Any:
        [row] = await self.fetch(sql)
        [value] = row.values()
        return value


@pytest.fixture
async def stacks(pgsql, plain_cluster, aiohttp_client, make_settings, database_url, clock):
    made = []
    for url in (database_url("experiment"), plain_cluster.url()):
        api = await aiohttp_client(
            create_experiment_app(make_settings("experiment", database_url=url), clock=clock)
        )
        # The rollup is refreshed by the test, at the same point on both.
        settings = make_settings("telemetry_ingest", database_url=url, rollup_interval=3600)
        ingest = await aiohttp_client(create_ingest_app(settings, clock=clock))
        made.append(Stack(api, ingest, url))
    hypertable, partitioned = made
    assert await hypertable.fetchval("SELECT telemetry_storage()") == "timescaledb"
    assert await partitioned.fetchval("SELECT telemetry_storage()") == "partitioned"
    return made


def readings_of(rng: random.Random, start, span: timedelta, count: int) -> list[dict[str, Any]]:
    """Readings at random instants (some shared, some on minute boundaries) on random channels."""
    out = []
    for _ in range(count):
        at = start + timedelta(seconds=round(rng.uniform(0, span.total_seconds()), 3))
        if rng.random() < 0.1:
            at = at.replace(second=0, microsecond=0)
        channel = rng.choice(CHANNELS)
        meta = {"signal": channel} if channel else {}
        out.append(reading(at, round(rng.uniform(-1e3, 1e3), 3), meta=meta))
        if rng.random() < 0.05:
            out.append(reading(at, round(rng.uniform(-1e3, 1e3), 3), meta=meta))
    return out


async def send_to_both(stacks: list[Stack], sensor: int, readings, **fields: Any) -> None:
    for stack in stacks:
        owned = stack.sensors[sensor]
        for start in range(0, len(readings), 500):
            await accepted(
                stack.ingest, owned["token"], batch(owned, readings[start : start + 500], **fields)
            )


async def answers(stack: Stack, owner, start, end) -> dict[str, Any]:
    """Every read of the test's sensors."""
    out: dict[str, Any] = {}
    ids = [s["id"] for s in stack.sensors]
    for layer in ("raw", "physical"):
        out[f"history {layer}"] = await history(
            stack.ingest, owner, query(ids, layer=layer), limit=700
        )
        for bucket, width in WIDTHS.items():
            for a, b in ((start, end), (start + 7 * SECOND / 3, end - 3 * SECOND / 7)):
                # At most 10 000 buckets a request: 10 s ones over the middle day only.
                if width < timedelta(minutes=1):
                    a, b = a + DAY, b - DAY
                params = query(ids, start=a, end=b, bucket=bucket, layer=layer)
                out[f"aggregate {layer} {bucket} {a}"] = await get(
                    stack.ingest, owner, AGGREGATE, params
                )
        window = query(ids, start=end - DAY / 2, end=end - DAY / 2 + 2 * HOUR, layer=layer)
        out[f"aligned {layer}"] = await get(
            stack.ingest,
            owner,
            "/api/v1/telemetry/aligned",
            [*window, ("step", "10s"), ("fill", "previous")],
        )
    return stack.anonymous(out)


def approximately(answer: Any) -> Any:
    """Averages compared to 1e-9: the storages may sum in another order."""
    if isinstance(answer, dict):
        return {
            key: pytest.approx(value, rel=1e-9, abs=1e-9)
            if key in ("avg", "twa") and isinstance(value, float)
            else approximately(value)
            for key, value in answer.items()
        }
    if isinstance(answer, list):
        return [approximately(item) for item in answer]
    return answer


async def assert_same_answers(stacks: list[Stack], owner, start, end, stored: int) -> None:
    hypertable, partitioned = [await answers(stack, owner, start, end) for stack in stacks]
    assert len(partitioned["history raw"]) == stored
    assert hypertable.keys() == partitioned.keys()
    for name in partitioned:
        assert hypertable[name] == approximately(partitioned[name]), name


async def test_hypertable_and_partitions_answer_alike_compressed_chunks_and_late_data(
    stacks, owner, project_id, clock
):
    rng = random.Random(22)
    for stack in stacks:
        for _ in range(2):
            stack.sensors.append(
                await create_sensor(stack.api, owner, project_id, profile=linear(a=2.0, b=1.0))
            )
    # Three days after the profiles' start (physical values), then one from before it.
    start = aligned(clock.now + SECOND, timedelta(hours=1))
    end = start + 3 * DAY
    clock.advance(4 * 86400)
    stored = 0
    for sensor in (0, 1):
        readings = readings_of(rng, start, 3 * DAY, 2500)
        await send_to_both(stacks, sensor, readings)
        stored += len(readings)
    await send_to_both(stacks, 0, [reading(start - 400 * DAY, 5.0)])
    stored += 1

    hypertable = stacks[0]
    compressed = await hypertable.fetch(
        "SELECT compress_chunk(c, if_not_compressed => true)"
        " FROM show_chunks('telemetry_records') c"
    )
    assert len(compressed) >= 4
    assert await hypertable.fetchval(
        "SELECT bool_and(is_compressed) FROM timescaledb_information.chunks"
        " WHERE hypertable_name = 'telemetry_records'"
    )
    await assert_same_answers(stacks, owner, start, end, stored)

    # Late readings into compressed chunks, and a batch sent twice (stored once).
    late = readings_of(rng, start + DAY / 2, DAY, 300)
    await send_to_both(stacks, 1, late, batch_id="late-1")
    await send_to_both(stacks, 1, late, batch_id="late-1")
    stored += len(late)
    await assert_same_answers(stacks, owner, start, end, stored)

    for stack in stacks:
        rollup = Rollup(stack.ingest.app[DATABASE], clock=clock, grace=timedelta(0))
        while await rollup.refresh():
            pass
        assert await stack.fetchval("SELECT count(*) FROM telemetry_rollup_pending") == 0
    await assert_same_answers(stacks, owner, start, end, stored)
    rollups = [await stack.fetch(ROLLUP, [s["id"] for s in stack.sensors]) for stack in stacks]
    assert rollups[0], "nothing was rolled up"
    assert rollups[0] == approximately(rollups[1])
