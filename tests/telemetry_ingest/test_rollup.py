"""Aggregates of 1-minute and coarser buckets read from the per-minute rollup. The same readings
are aggregated three ways and must agree: through an app reading the rollup (once refreshed,
and while minutes are still queued), through an app computing every bucket from the readings
with date_bin (`rollup_reads` off), and by the Python reference of test_readings."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend_common.keys import DATABASE
from telemetry_ingest_service.app import create_app as create_ingest_app
from telemetry_ingest_service.domain.rollup import Rollup, within_budget
from telemetry_ingest_service.repositories.rollup import Window
from tests.plugins.waiting import eventually
from tests.telemetry_ingest.ingest_api import accepted, batch, create_sensor, reading
from tests.telemetry_ingest.readings_api import (
    AGGREGATE,
    WIDTHS,
    aligned,
    comparable,
    get,
    physical,
    query,
    reference,
    send_at,
)

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
COARSE = ["1m", "5m", "1h", "1d"]


@pytest.fixture
async def rolling(pgsql, aiohttp_client, ingest_settings, clock):
    """An ingest app whose refresher runs every 20 ms with no grace."""
    settings = ingest_settings(rollup_interval=0.02, rollup_grace_seconds=0)
    return await aiohttp_client(create_ingest_app(settings, clock=clock))


@pytest.fixture
async def plain(pgsql, aiohttp_client, ingest_settings, clock):
    """An ingest app computing every aggregate from the readings (its refresher idle)."""
    settings = ingest_settings(rollup_reads=False, rollup_interval=3600)
    return await aiohttp_client(create_ingest_app(settings, clock=clock))


@pytest.fixture
async def lazy(pgsql, aiohttp_client, ingest_settings, clock):
    """An ingest app reading the rollup whose refresher stays idle: queued minutes stay queued
    unless another app refreshes them."""
    settings = ingest_settings(rollup_interval=3600)
    return await aiohttp_client(create_ingest_app(settings, clock=clock))


@pytest.fixture
def base(clock, sensors):
    """An hour start after the profiles' start; the clock moved two days past it."""
    start = aligned(clock.now + SECOND, timedelta(hours=1))
    clock.advance(2 * 86400)
    return start


def queued(pgsql) -> int:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_rollup_pending")
        return cursor.fetchone()[0]


def stored_minutes(pgsql, sensor_id: str, layer: str) -> dict[datetime, int]:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT minute, count FROM telemetry_rollup WHERE sensor_id = %s AND layer = %s",
            (sensor_id, layer),
        )
        return dict(cursor.fetchall())


async def refreshed(pgsql) -> None:
    async def nothing_queued() -> bool:
        return queued(pgsql) == 0

    await eventually(nothing_queued)


async def aggregate(client, owner, sensors, start, end, bucket, layer) -> list[dict[str, Any]]:
    params = query(sensors, start=start, end=end, bucket=bucket, layer=layer)
    answer = await get(client, owner, AGGREGATE, params)
    assert answer["bucket"] == bucket
    return answer["items"]


def random_readings(rng: random.Random, span: float) -> list[tuple[float, float]]:
    """Readings at irregular offsets (seconds) over `span`, with quiet stretches, some on
    minute boundaries, some sharing an instant."""
    offsets: list[float] = []
    at = 0.0
    while at < span:
        offsets.append(at)
        if rng.random() < 0.1:
            offsets.append(at)  # a second reading at the same instant
        step = rng.choice([0.5, 1.0, 7.25, 13.0, 60.0 - at % 60.0, 600.0])
        at += step if rng.random() < 0.98 else 2400.0
    return [(offset, round(rng.uniform(-1e3, 1e3), 3)) for offset in offsets]


async def send_shuffled(client, sensor, base, points, rng: random.Random) -> list[Any]:
    """In batches of up to 200 consecutive readings, sent in a shuffled order; the readings in
    the order sent."""
    batches = [points[i : i + 200] for i in range(0, len(points), 200)]
    rng.shuffle(batches)
    for chunk in batches:
        await send_at(client, sensor, base, chunk)
    return [point for chunk in batches for point in chunk]


def as_sent(base, points, layer: str) -> list[tuple[datetime, float]]:
    value = physical if layer == "physical" else float
    return [(base + timedelta(seconds=s), value(v)) for s, v in points]


def plainly(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**item, "bucket_start": datetime.fromisoformat(item["bucket_start"])} for item in items
    ]


async def test_rollup_date_bin_and_reference_agree_on_random_readings(
    rolling, plain, pgsql, owner, sensors, base
):
    rng = random.Random(7)
    points = {}
    for sensor in sensors:
        readings = random_readings(rng, 5 * 3600)
        points[sensor["id"]] = await send_shuffled(rolling, sensor, base, readings, rng)
    await refreshed(pgsql)
    ranges = [
        (base, base + timedelta(hours=6)),  # whole minutes
        (base + 17.5 * SECOND, base + timedelta(hours=4, seconds=31)),  # partial edge minutes
        (base + 3 * MINUTE + 5 * SECOND, base + 3 * MINUTE + 50 * SECOND),  # inside one minute
    ]
    for layer in ("raw", "physical"):
        for start, end in ranges:
            kept = {
                sensor_id: [
                    (when, value)
                    for when, value in as_sent(base, sent, layer)
                    if start <= when < end
                ]
                for sensor_id, sent in points.items()
            }
            for bucket in COARSE:
                rolled = await aggregate(rolling, owner, sensors, start, end, bucket, layer)
                computed = await aggregate(plain, owner, sensors, start, end, bucket, layer)
                expected = reference(kept, WIDTHS[bucket])
                assert comparable(rolled) == plainly(computed), (layer, start, end, bucket)
                assert comparable(rolled) == expected, (layer, start, end, bucket)


async def test_refreshed_minutes_are_stored_per_sensor_and_layer(rolling, pgsql, sensors, base):
    sensor = sensors[0]
    await send_at(rolling, sensor, base, [(0, 1.0), (30, 2.0), (61, 3.0), (179.5, 4.0)])

    await refreshed(pgsql)

    expected = {base: 2, base + MINUTE: 1, base + 2 * MINUTE: 1}
    assert stored_minutes(pgsql, sensor["id"], "raw") == expected
    assert stored_minutes(pgsql, sensor["id"], "physical") == expected
    assert stored_minutes(pgsql, sensors[1]["id"], "raw") == {}


def test_a_refresh_transaction_shares_its_minutes_among_its_windows():
    sensor = uuid.uuid4()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    windows = [Window(sensor, start, start + MINUTE), Window(None, start, start + 4 * MINUTE)]

    kept, rest = within_budget(windows, 5)

    assert kept == [windows[0], Window(None, start, start + 2 * MINUTE)]
    assert rest == [Window(None, start + 2 * MINUTE, start + 4 * MINUTE)]
    assert within_budget(windows, 0) == (
        [windows[0], Window(None, start, start + MINUTE)],
        [Window(None, start + MINUTE, start + 4 * MINUTE)],
    )


async def test_one_pass_takes_every_batch_of_a_sensor_and_more_minutes_than_a_transaction(
    pgsql, aiohttp_client, ingest_settings, clock, sensors, base
):
    """Four hundred batches queue the same minute: one pass recomputes it; a range longer than
    a transaction's share (240 minutes for the first) is split, queued again and finished in
    the same pass."""
    settings = ingest_settings(rollup_interval=3600, sensor_rate=10_000)
    lazy = await aiohttp_client(create_ingest_app(settings, clock=clock))
    first, second = sensors
    for n in range(400):
        await send_at(lazy, first, base, [(n / 100, float(n))])
    hours = [(3600.0 * h + 30.0 * m, 1.0) for h in range(5) for m in range(120)]
    await send_at(lazy, second, base, hours)  # five hours: 300 minutes

    taken = await Rollup(lazy.app[DATABASE], clock=clock, grace=timedelta(0)).refresh()

    # The 401 entries, and what went past the first transaction's share, queued again.
    assert taken > 401
    assert queued(pgsql) == 0
    assert stored_minutes(pgsql, first["id"], "raw") == {base: 400}
    minutes = stored_minutes(pgsql, second["id"], "raw")
    assert len(minutes) == 300
    assert set(minutes.values()) == {2}


async def test_a_late_reading_in_a_refreshed_minute_counts_at_once_and_after_refresh(
    lazy, pgsql, aiohttp_client, ingest_settings, clock, owner, sensor, base
):
    await send_at(lazy, sensor, base, [(0, 1.0), (40, 5.0), (70, 2.0)])
    refresher = await aiohttp_client(
        create_ingest_app(ingest_settings(rollup_interval=0.02), clock=clock)
    )
    await refreshed(pgsql)
    await refresher.close()
    start, end = base, base + 5 * MINUTE

    await send_at(lazy, sensor, base, [(20, 9.0)])
    assert queued(pgsql) == 1
    queued_answer = await aggregate(lazy, owner, [sensor], start, end, "5m", "raw")
    await aiohttp_client(create_ingest_app(ingest_settings(rollup_interval=0.02), clock=clock))
    await refreshed(pgsql)
    refreshed_answer = await aggregate(lazy, owner, [sensor], start, end, "5m", "raw")

    kept = {
        sensor["id"]: [
            (base + timedelta(seconds=s), v) for s, v in ((0, 1.0), (20, 9.0), (40, 5.0), (70, 2.0))
        ]
    }
    assert comparable(queued_answer) == reference(kept, WIDTHS["5m"])
    assert comparable(refreshed_answer) == reference(kept, WIDTHS["5m"])
    assert stored_minutes(pgsql, sensor["id"], "raw")[base] == 3


async def test_the_current_minute_stays_queued_until_it_is_over(
    pgsql, aiohttp_client, ingest_settings, clock, owner, sensor
):
    settings = ingest_settings(rollup_interval=0.02, rollup_grace_seconds=10)
    client = await aiohttp_client(create_ingest_app(settings, clock=clock))
    now = clock.now.replace(second=30, microsecond=0)
    clock.now = now
    minute = now.replace(second=0)
    await send_at(client, sensor, minute, [(1, 1.0), (2, 2.0)])
    await send_at(client, sensor, minute - 5 * MINUTE, [(0, 7.0)])

    async def old_minute_refreshed() -> bool:
        return minute - 5 * MINUTE in stored_minutes(pgsql, sensor["id"], "raw")

    await eventually(old_minute_refreshed)
    assert queued(pgsql) == 1
    answer = await aggregate(
        client, owner, [sensor], minute - 5 * MINUTE, minute + MINUTE, "1m", "raw"
    )
    assert [item["count"] for item in answer] == [1, 2]

    clock.advance(40)  # the minute is over, and the grace with it
    await refreshed(pgsql)
    assert stored_minutes(pgsql, sensor["id"], "raw")[minute] == 2


async def test_retention_takes_the_minutes_of_dropped_readings_out_of_the_rollup(
    pgsql, aiohttp_client, rolling, api, owner, project_id, ingest_settings, clock
):
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT telemetry_ensure_partitions(now() - interval '14 months', 2)")
    sensor = await create_sensor(api, owner, project_id)
    now = datetime.now(UTC)
    old, recent, ancient = (
        now - timedelta(days=425),
        now - timedelta(days=2),
        datetime(1975, 5, 1, tzinfo=UTC),
    )
    for when in (old, recent, ancient):
        await send_at(rolling, sensor, when, [(0, 1.0)])
    await refreshed(pgsql)
    assert len(stored_minutes(pgsql, sensor["id"], "raw")) == 3

    await aiohttp_client(create_ingest_app(ingest_settings(retention_days=365), clock=clock))
    await refreshed(pgsql)

    assert list(stored_minutes(pgsql, sensor["id"], "raw")) == [
        datetime(recent.year, recent.month, recent.day, recent.hour, recent.minute, tzinfo=UTC)
    ]
    answer = await aggregate(rolling, owner, [sensor], old - timedelta(days=1), now, "1d", "raw")
    assert [item["count"] for item in answer] == [1]


# --- channels -----------------------------------------------------------------------------------

CHANNELS = ("a", "b", None)  # None: no meta.signal, the default channel `value`


async def send_on_channels(client, sensor, base, points) -> None:
    """One batch of (seconds after base, raw value, channel) readings."""
    readings = [
        reading(base + timedelta(seconds=s), v, **({"meta": {"signal": ch}} if ch else {}))
        for s, v, ch in points
    ]
    await accepted(client, sensor["token"], batch(sensor, readings))


def by_channel(base, sent, layer, start, end) -> dict[tuple[str, str], list[Any]]:
    """The reference's input: readings per (sensor, channel) kept in [start, end)."""
    value = physical if layer == "physical" else float
    kept: dict[tuple[str, str], list[Any]] = {}
    for sensor_id, points in sent.items():
        for s, v, ch in points:
            when = base + timedelta(seconds=s)
            if start <= when < end:
                kept.setdefault((sensor_id, ch or "value"), []).append((when, value(v)))
    return kept


async def test_rollup_keeps_channels_apart_exactly_with_late_and_shuffled_batches(
    lazy, plain, pgsql, aiohttp_client, ingest_settings, clock, owner, sensors, base
):
    rng = random.Random(19)
    sent: dict[str, list[Any]] = {sensor["id"]: [] for sensor in sensors}
    held_back = []
    for sensor in sensors:
        points = [(s, v, rng.choice(CHANNELS)) for s, v in random_readings(rng, 5 * 3600)]
        chunks = [points[i : i + 10] for i in range(0, len(points), 10)]
        assert len(chunks) > 6
        rng.shuffle(chunks)
        held_back += [(sensor, chunk) for chunk in chunks[:3]]  # arrive after the refresh
        for chunk in chunks[3:]:
            await send_on_channels(lazy, sensor, base, chunk)
            sent[sensor["id"]].extend(chunk)
    refresher = await aiohttp_client(
        create_ingest_app(ingest_settings(rollup_interval=0.02), clock=clock)
    )
    await refreshed(pgsql)
    await refresher.close()
    ranges = [
        (base, base + timedelta(hours=6)),
        (base + 17.5 * SECOND, base + timedelta(hours=2, seconds=31)),
    ]

    async def check(phase: str) -> None:
        for layer in ("raw", "physical"):
            for start, end in ranges:
                expected_input = by_channel(base, sent, layer, start, end)
                for bucket in COARSE:
                    rolled = await aggregate(lazy, owner, sensors, start, end, bucket, layer)
                    computed = await aggregate(plain, owner, sensors, start, end, bucket, layer)
                    where = (phase, layer, start, end, bucket)
                    assert comparable(rolled) == plainly(computed), where
                    assert comparable(rolled) == reference(expected_input, WIDTHS[bucket]), where
        start, end = ranges[0]
        params = query(sensors, start=start, end=end, bucket="5m", layer="raw", signal="a")
        only_a = (await get(lazy, owner, AGGREGATE, params))["items"]
        kept_a = {k: v for k, v in by_channel(base, sent, "raw", start, end).items() if k[1] == "a"}
        assert comparable(only_a) == reference(kept_a, WIDTHS["5m"]), phase

    await check("refreshed")
    assert {ch for (_, ch) in stored_channels(pgsql)} == {"a", "b", "value"}
    for sensor, chunk in held_back:  # late and out of order, into refreshed minutes
        await send_on_channels(lazy, sensor, base, chunk)
        sent[sensor["id"]].extend(chunk)
    assert queued(pgsql) == len(held_back)
    await check("queued")
    await aiohttp_client(create_ingest_app(ingest_settings(rollup_interval=0.02), clock=clock))
    await refreshed(pgsql)
    await check("refreshed again")


def stored_channels(pgsql) -> set[tuple[str, str]]:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT DISTINCT sensor_id::text, signal FROM telemetry_rollup")
        return set(cursor.fetchall())
