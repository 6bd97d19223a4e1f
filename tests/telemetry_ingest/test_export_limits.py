"""Exports under attack: slow readers (they read a few bytes and stall) used to hold a pooled
connection each for as long as they liked, until nothing else of the service could reach the
database. Exports now have their own small budget of connections, a per-user cap, a time limit
and a row cap."""

import asyncio
import time
from datetime import timedelta

import pytest

from tests.experiment.factories import expect
from tests.plugins.waiting import eventually
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import accepted, batch, reading
from tests.telemetry_ingest.readings_api import EXPORT, HISTORY, query

BIG = 60_000  # readings: ~8 MB of CSV, more than the socket buffers hold (4 MB)


@pytest.fixture
async def exported(ingest, sensor, base):
    """BIG readings of the sensor; the query selecting them."""
    for first in range(0, BIG, 10_000):
        readings = [
            reading(base + timedelta(milliseconds=first + i), float(i)) for i in range(10_000)
        ]
        await accepted(ingest, sensor["token"], batch(sensor, readings))
    return query([sensor])


async def test_slow_readers_do_not_starve_the_other_requests(
    ingest_app, exported, owner, viewer, slow_readers
):
    ingest = await ingest_app(db_pool_max_size=3)

    readers = [await slow_readers(ingest, user, EXPORT, exported) for user in (owner, viewer) * 2]
    started = time.perf_counter()
    page = await asyncio.wait_for(
        ingest.get(HISTORY, params=[*exported, ("limit", "10")], headers=owner.headers), 5
    )

    assert (await expect(page, 200))["items"]
    assert time.perf_counter() - started < 2
    assert sorted(reader.status for reader in readers) == [200, 200, 503, 503]
    for busy in (reader for reader in readers if reader.status == 503):
        answer = await busy.until(b"exports_busy")
        assert b"\r\nRetry-After: 5\r\n" in answer


async def test_one_user_runs_a_few_exports_at_once(
    ingest_app, exported, owner, viewer, slow_readers
):
    ingest = await ingest_app(exports_per_user=1, export_connections=4)
    first = await slow_readers(ingest, owner, EXPORT, exported)

    second = await ingest.get(EXPORT, params=exported, headers=owner.headers)
    other = await ingest.get(EXPORT, params=[*exported, ("format", "csv")], headers=viewer.headers)

    assert first.status == 200
    await assert_problem(second, 429, "too_many_exports")
    assert second.headers["Retry-After"] == "5"
    assert other.status == 200
    assert len((await other.text()).splitlines()) == BIG + 1


async def test_a_slow_reader_is_cut_off_at_the_time_limit(
    ingest_app, exported, owner, slow_readers, base
):
    ingest = await ingest_app(export_max_seconds=3, export_connections=1)
    stalled = await slow_readers(ingest, owner, EXPORT, exported)

    busy = await ingest.get(EXPORT, params=exported, headers=owner.headers)

    assert stalled.status == 200
    await assert_problem(busy, 503, "exports_busy")

    async def slot_free() -> bool:
        first_ten = [*exported, ("to", (base + timedelta(milliseconds=10)).isoformat())]
        response = await ingest.get(EXPORT, params=first_ten, headers=owner.headers)
        await response.read()
        return response.status == 200

    # The one slot comes free only when the stalled export ends, which, as its client reads
    # nothing, only the time limit does; reading the rest before then would let it finish.
    # A time limit of seconds, not less: on a loaded machine the second request must still find
    # the slot taken.
    await eventually(slot_free, within=15, what="the export slot to come free")
    assert await stalled.drained()  # the server ended it


async def test_the_row_cap_cuts_an_export_and_says_so(ingest_app, owner, sensor, base):
    ingest = await ingest_app(export_max_rows=5)
    readings = [reading(base + timedelta(seconds=i), float(i)) for i in range(8)]
    await accepted(ingest, sensor["token"], batch(sensor, readings))
    few = [*query([sensor], start=base, end=base + timedelta(seconds=5)), ("format", "json")]
    many = [*query([sensor]), ("format", "json")]

    cut = await ingest.get(EXPORT, params=many, headers=owner.headers)
    whole = await ingest.get(EXPORT, params=few, headers=owner.headers)

    assert [item["raw_value"] for item in await expect(cut, 200)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert cut.headers["Export-Truncated"] == "row_limit"
    assert cut.headers["Export-Row-Limit"] == "5"
    assert len(await expect(whole, 200)) == 5
    assert "Export-Truncated" not in whole.headers
