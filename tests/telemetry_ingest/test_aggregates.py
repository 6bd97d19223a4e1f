"""Per-bucket aggregates of stored telemetry, checked against a reference computed here from
the readings sent: buckets on the origin grid, `points` picking a width, the physical and raw
layers, time weighting."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.experiment.factories import (
    create_experiment,
)
from tests.telemetry_ingest.ingest_api import (
    accepted,
    batch,
    create_sensor,
    linear,
    publish_profile,
    readings_at,
)
from tests.telemetry_ingest.readings_api import (
    AGGREGATE,
    HOUR,
    ORIGIN,
    SECOND,
    WIDTHS,
    aligned,
    bucket_of,
    comparable,
    get,
    history,
    instant,
    physical,
    problem,
    query,
    reference,
    send_at,
)


@pytest.fixture
def base(clock, sensors):
    """A minute start after the profiles' start; the clock moved three hours past it."""
    start = aligned(clock.now + SECOND, timedelta(minutes=1))
    clock.advance(3 * 3600)
    return start


@pytest.fixture
async def experiment(api, owner, project_id):
    return await create_experiment(api, owner, project_id)


# --- aggregates --------------------------------------------------------------------------------

# Seconds after a minute start: irregular, several exactly on 10 s and minute boundaries, and
# one bucket with a single reading at its very start.
OFFSETS_A = [0.0, 0.25, 3.5, 9.999, 10.0, 17.25, 29.0, 30.0, 41.125, 59.5, 60.0, 61.0, 119.0, 150.0]
VALUES_A = [5.0, -1.0, 2.5, 8.0, 3.0, 3.0, -4.5, 0.0, 12.0, 7.0, 1.0, 2.0, 6.5, 9.0]
OFFSETS_B = [0.0, 10.0, 12.0, 20.0, 59.999, 70.0, 80.0, 90.0]
VALUES_B = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]


@pytest.mark.parametrize("bucket", ["10s", "1m"])
@pytest.mark.parametrize("layer", ["raw", "physical"])
async def test_aggregates_match_a_reference(ingest, owner, sensors, base, bucket, layer):
    a, b = sensors
    # A in two batches, the later one sent first; B in one.
    await send_at(ingest, a, base, list(zip(OFFSETS_A[7:], VALUES_A[7:], strict=True)))
    await send_at(ingest, a, base, list(zip(OFFSETS_A[:7], VALUES_A[:7], strict=True)))
    await send_at(ingest, b, base, list(zip(OFFSETS_B, VALUES_B, strict=True)))
    value = physical if layer == "physical" else float
    sent = {
        sensor["id"]: [
            (base + timedelta(seconds=s), value(v)) for s, v in zip(offsets, values, strict=True)
        ]
        for sensor, offsets, values in ((a, OFFSETS_A, VALUES_A), (b, OFFSETS_B, VALUES_B))
    }

    answer = await get(
        ingest,
        owner,
        AGGREGATE,
        query(sensors, start=base, end=base + 5 * 60 * SECOND, bucket=bucket, layer=layer),
    )

    assert {key: answer[key] for key in ("bucket", "origin", "layer")} == {
        "bucket": bucket,
        "origin": "2000-01-01T00:00:00Z",
        "layer": layer,
    }
    assert comparable(answer["items"]) == reference(sent, WIDTHS[bucket])


async def test_aggregates_count_only_readings_in_from_to(ingest, owner, sensor, base):
    await send_at(ingest, sensor, base, [(0, 1.0), (7, 2.0), (8, 4.0), (12, 8.0), (20, 16.0)])
    start, end = base + 7 * SECOND, base + 20 * SECOND

    answer = await get(
        ingest, owner, AGGREGATE, query([sensor], start=start, end=end, bucket="10s", layer="raw")
    )

    kept = {
        sensor["id"]: [(base + timedelta(seconds=s), v) for s, v in ((7, 2.0), (8, 4.0), (12, 8.0))]
    }
    assert comparable(answer["items"]) == reference(kept, WIDTHS["10s"])
    # The first bucket starts on the grid, before `from`.
    assert instant(answer["items"][0]["bucket_start"]) == base


async def test_buckets_without_readings_are_absent(ingest, owner, sensor, base):
    await send_at(ingest, sensor, base, [(5, 1.0), (65, 2.0)])

    answer = await get(
        ingest,
        owner,
        AGGREGATE,
        query([sensor], start=base, end=base + 5 * 60 * SECOND, bucket="10s"),
    )

    starts = [instant(item["bucket_start"]) for item in answer["items"]]
    assert starts == [base, base + 60 * SECOND]


async def test_one_reading_weighs_until_the_bucket_end(ingest, owner, sensor, base):
    # 1.0 for 6 s, 3.0 for the last 4 s: twa 1.8 while avg is 2.
    await send_at(ingest, sensor, base, [(0, 1.0), (6, 3.0)])

    [item] = (
        await get(
            ingest,
            owner,
            AGGREGATE,
            query([sensor], start=base, end=base + 10 * SECOND, bucket="10s", layer="raw"),
        )
    )["items"]

    assert item["avg"] == pytest.approx(2.0)
    assert item["twa"] == pytest.approx(1.8)
    assert (item["first"], item["last"], item["count"]) == (1.0, 3.0, 2)


async def test_physical_layer_skips_readings_without_a_physical_value(
    api, ingest, owner, project_id, clock
):
    bare = await create_sensor(api, owner, project_id)
    switch = aligned(clock.now + SECOND, timedelta(minutes=1)) + 30 * SECOND
    clock.now = switch
    await publish_profile(api, owner, bare["id"], linear(a=2.0, b=1.0))
    clock.advance(600)
    # Before the profile: no_profile; after it: converted, except an overflow (error).
    points = [(-20, 1.0), (-10, 2.0), (0, 3.0), (10, 4.0), (15, 1e308)]
    await send_at(ingest, bare, switch, points)
    never = await create_sensor(api, owner, project_id)
    await send_at(ingest, never, switch, [(0, 5.0)])
    params = query([bare, never], start=switch - 30 * SECOND, end=switch + 30 * SECOND, bucket="1m")

    items = (await get(ingest, owner, AGGREGATE, [*params, ("layer", "physical")]))["items"]
    listed = await history(ingest, owner, query([bare], layer="physical"))

    assert [item["conversion_status"] for item in listed] == [
        "no_profile",
        "no_profile",
        "ok",
        "ok",
        "error",
    ]
    kept = {bare["id"]: [(switch, physical(3.0)), (switch + 10 * SECOND, physical(4.0))]}
    assert comparable(items) == reference(kept, WIDTHS["1m"])


async def test_raw_layer_counts_readings_without_a_physical_value(
    api, ingest, owner, project_id, base
):
    bare = await create_sensor(api, owner, project_id)
    await send_at(ingest, bare, base, [(0, 1.0), (30, 2.0)])

    params = query([bare], start=base, end=base + 60 * SECOND, bucket="1m", layer="raw")
    items = (await get(ingest, owner, AGGREGATE, params))["items"]

    sent = {bare["id"]: [(base, 1.0), (base + 30 * SECOND, 2.0)]}
    assert comparable(items) == reference(sent, WIDTHS["1m"])


@pytest.mark.parametrize(
    ("span", "points", "bucket"),
    [
        (HOUR, 360, "10s"),
        (HOUR, 359, "1m"),
        (HOUR, 60, "1m"),
        (HOUR, 59, "5m"),
        (HOUR, 12, "5m"),
        (HOUR, 11, "1h"),
        (HOUR, 1, "1h"),
        (timedelta(days=3), 72, "1h"),
        (timedelta(days=3), 71, "1d"),
        (timedelta(days=3), 3, "1d"),
        (timedelta(minutes=1), 10_000, "10s"),
    ],
)
async def test_points_pick_the_narrowest_width_that_fits(
    ingest, owner, sensor, span, points, bucket
):
    start = datetime(2026, 3, 1, tzinfo=UTC)
    params = query([sensor], start=start, end=start + span, points=points)

    answer = await get(ingest, owner, AGGREGATE, params)

    assert answer["bucket"] == bucket


async def test_points_answer_at_most_that_many_buckets(ingest, owner, sensor, base):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(base, *range(120))))

    params = query([sensor], start=base, end=base + 120 * SECOND, points=12, layer="raw")
    answer = await get(ingest, owner, AGGREGATE, params)

    assert answer["bucket"] == "10s"
    assert len(answer["items"]) == 12
    assert [item["count"] for item in answer["items"]] == [10] * 12


async def test_points_answer_at_most_that_many_buckets_off_the_grid(ingest, owner, sensor, base):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(base, *range(130))))

    start = base + 5 * SECOND
    params = query([sensor], start=start, end=start + 120 * SECOND, points=12, layer="raw")
    answer = await get(ingest, owner, AGGREGATE, params)

    assert len(answer["items"]) <= 12, (answer["bucket"], len(answer["items"]))


@pytest.mark.parametrize("bucket", list(WIDTHS))
async def test_bucket_starts_are_on_the_origin_grid(ingest, owner, sensor, base, bucket):
    # Readings at odd instants over three days, queried from an odd instant (one day of them
    # for 10 s buckets, which allow no more).
    start = base - timedelta(days=2, hours=5, minutes=7, seconds=13)
    span = timedelta(days=1 if bucket == "10s" else 3)
    sent = [0.5, 3_601.25, 86_399.0, 90_000.75, 172_799.5, 190_000.0]
    await send_at(ingest, sensor, start, [(s, 1.0) for s in sent])
    offsets = [s for s in sent if timedelta(seconds=s) < span]

    params = query([sensor], start=start, end=start + span, bucket=bucket, layer="raw")
    answer = await get(ingest, owner, AGGREGATE, params)

    width = WIDTHS[bucket]
    starts = [instant(item["bucket_start"]) for item in answer["items"]]
    assert all((when - ORIGIN) % width == timedelta(0) for when in starts), starts
    assert starts == sorted({bucket_of(start + timedelta(seconds=s), width) for s in offsets})
    assert sum(item["count"] for item in answer["items"]) == len(offsets)


async def test_too_many_buckets_is_422(ingest, owner, sensor):
    start = datetime(2026, 3, 1, tzinfo=UTC)

    fits = query([sensor], start=start, end=start + 10_000 * 10 * SECOND, bucket="10s")
    await get(ingest, owner, AGGREGATE, fits)
    for params in (
        query([sensor], start=start, end=start + 10_001 * 10 * SECOND, bucket="10s"),
        query([sensor], start=start - timedelta(days=10_001), end=start, bucket="1d"),
        query([sensor], start=datetime(1970, 1, 1, tzinfo=UTC), end=start, points=1),
    ):
        await problem(ingest, owner, AGGREGATE, params, 422, "too_many_buckets")


async def test_first_and_last_follow_the_history_order_at_equal_timestamps(
    ingest, owner, sensor, base
):
    await send_at(ingest, sensor, base, [(0, 1.0), (5, 2.0)])
    await send_at(ingest, sensor, base, [(0, 3.0), (5, 4.0)])
    params = query([sensor], start=base, end=base + 10 * SECOND, layer="raw")
    ordered = [item["raw_value"] for item in await history(ingest, owner, params)]

    [item] = (await get(ingest, owner, AGGREGATE, [*params, ("bucket", "10s")]))["items"]

    assert ordered == [1.0, 3.0, 2.0, 4.0]
    assert (item["first"], item["last"]) == (ordered[0], ordered[-1])
    # 1.0 and 3.0 at 0 s: the later one (3.0) weighs until 5 s; 4.0 from 5 s to the end.
    assert item["twa"] == pytest.approx((3.0 * 5 + 4.0 * 5) / 10)


async def test_aggregates_of_large_finite_values(ingest, owner, sensor, base):
    await send_at(ingest, sensor, base, [(0, 1e308), (5, 1e308)])

    params = query([sensor], start=base, end=base + 10 * SECOND, bucket="10s", layer="raw")

    [item] = (await get(ingest, owner, AGGREGATE, params))["items"]

    assert (item["count"], item["min"], item["max"]) == (2, 1e308, 1e308)
    assert (item["first"], item["last"]) == (1e308, 1e308)
    assert item["avg"] == pytest.approx(1e308)
    assert item["twa"] == pytest.approx(1e308)
