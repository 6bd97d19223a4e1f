"""Reading run metrics over HTTP: summaries page by page, a series keyset-paged with step and
time filters, and charts (`points=N`) that keep every bucket's first, lowest, highest and last
point, whether drawn from the tiles kept on write or from the points."""

import math
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.experiment.factories import create_run_in_status, expect
from tests.experiment.metric_kit import (
    log_metrics,
    metrics_path,
    point,
    series,
    series_path,
    summaries,
    whole_series,
)
from tests.problems import assert_problem

TILE_WIDTHS = tuple(4**k for k in range(2, 11))
BASE = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
async def run(client, editor, experiment):
    return await create_run_in_status(client, editor, experiment["id"], "running")


def at(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat()


async def test_summaries_come_by_name_page_by_page(client, editor, run):
    names = ["b", "a/x", "c", "A", "d"]
    await log_metrics(client, editor, run["id"], [point(n, 1.0) for n in names])

    got, cursor = [], None
    while True:
        page = await summaries(
            client, editor, run["id"], limit=2, **({"cursor": cursor} if cursor else {})
        )
        assert len(page["items"]) <= 2
        got += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert got == sorted(names)


async def test_a_forged_summaries_cursor_is_400(client, editor, run):
    response = await client.get(
        metrics_path(run["id"]), params={"cursor": "eyJuIjoxfQ"}, headers=editor.headers
    )
    await assert_problem(response, 400, "invalid_cursor")


async def test_a_series_pages_in_step_order_with_ties_kept(client, editor, run):
    await log_metrics(
        client, editor, run["id"], [point("x", float(s), step=s) for s in range(7, 0, -1)]
    )
    await log_metrics(
        client, editor, run["id"], [point("x", 30.0, step=3), point("x", 31.0, step=3)]
    )

    items = await whole_series(client, editor, run["id"], "x", limit=2)

    assert [(i["step"], i["value"]) for i in items] == [
        (1, 1.0), (2, 2.0), (3, 3.0), (3, 30.0), (3, 31.0), (4, 4.0), (5, 5.0), (6, 6.0), (7, 7.0),
    ]  # fmt: skip


async def test_a_series_is_filtered_by_step_and_time(client, editor, run):
    await log_metrics(
        client,
        editor,
        run["id"],
        [point("x", float(s), step=s, timestamp=at(s)) for s in range(10)],
    )

    by_step = await whole_series(client, editor, run["id"], "x", step_from=3, step_to=6)
    by_time = await whole_series(client, editor, run["id"], "x", time_from=at(2), time_to=at(4))
    both = await whole_series(
        client, editor, run["id"], "x", step_from=3, time_from=at(0), time_to=at(5)
    )

    assert [i["step"] for i in by_step] == [3, 4, 5]
    assert [i["step"] for i in by_time] == [2, 3]
    assert [i["step"] for i in both] == [3, 4]
    assert by_time[0]["timestamp"] == at(2).replace("+00:00", "Z")


@pytest.mark.parametrize(
    "params",
    [
        {"step_from": 5, "step_to": 5},
        {"time_from": at(5), "time_to": at(1)},
        {"points": 3},
        {"points": 10_001},
        {"points": 10, "limit": 5},
        {"step_from": "one"},
        {"colour": "red"},
    ],
)
async def test_a_bad_series_query_is_422(client, editor, run, params):
    await log_metrics(client, editor, run["id"], [point("x", 1.0)])

    response = await client.get(series_path(run["id"], "x"), params=params, headers=editor.headers)

    await assert_problem(response, 422, "validation_failed")


@pytest.mark.parametrize("name", ["nope", "n" * 251, "a\x00b"])
async def test_a_metric_the_run_does_not_have_is_404(client, editor, run, name):
    await log_metrics(client, editor, run["id"], [point("x", 1.0)])

    response = await client.get(series_path(run["id"], name), headers=editor.headers)

    await assert_problem(response, 404, "metric_not_found")


async def test_a_name_with_slashes_is_read_encoded_or_not(client, editor, run):
    await log_metrics(client, editor, run["id"], [point("train/loss", 1.5)])

    encoded = await series(client, editor, run["id"], "train/loss")
    plain = await expect(
        await client.get(f"{metrics_path(run['id'])}/train/loss", headers=editor.headers), 200
    )

    assert [i["value"] for i in encoded["items"]] == [i["value"] for i in plain["items"]] == [1.5]


# --- charts --------------------------------------------------------------------------------------


def m4(points, origin: int, width: int) -> list[tuple[int, float]]:
    """The expected chart: per bucket, its first, lowest, highest and last point (distinct steps
    and values, so no ties)."""
    buckets: dict[int, list[tuple[int, float]]] = {}
    for step, value in sorted(points):
        buckets.setdefault((step - origin) // width, []).append((step, value))
    chart = []
    for key in sorted(buckets):
        members = buckets[key]
        finite = [p for p in members if math.isfinite(p[1])]
        chosen = {members[0], members[-1]}
        if finite:
            chosen |= {min(finite, key=lambda p: p[1]), max(finite, key=lambda p: p[1])}
        chart += sorted(chosen)
    return chart


def tile_origin(low: int, high: int, points: int) -> tuple[int, int]:
    """The tile width and the origin the service draws a range with, as documented."""
    least = math.ceil((high - low + 1) / (points // 4))
    tile = max(w for w in TILE_WIDTHS if w <= least)
    return tile, low // tile * tile


async def log_random_series(client, user, run, count, *, seed=7, first_step=0, nan_every=0):
    rng = random.Random(seed)
    values = rng.sample(range(-(10**6), 10**6), count)
    logged = []
    for start in range(0, count, 10_000):
        chunk = [
            (first_step + n, float("nan") if nan_every and n % nan_every == 5 else values[n] / 7)
            for n in range(start, min(start + 10_000, count))
        ]
        body = [
            point("loss", "NaN" if math.isnan(v) else v, step=s, timestamp=at(s)) for s, v in chunk
        ]
        rng.shuffle(body)  # tiles must not depend on the order points come in
        await log_metrics(client, user, run["id"], body)
        logged += chunk
    return logged


def as_pairs(items):
    return [(i["step"], math.nan if i["value"] == "NaN" else i["value"]) for i in items]


async def test_a_range_with_at_most_n_points_comes_back_whole(client, editor, run):
    logged = await log_random_series(client, editor, run, 40)

    chart = await series(client, editor, run["id"], "loss", points=40)

    assert chart["bucket_steps"] is None
    assert as_pairs(chart["items"]) == logged


async def test_a_chart_from_tiles_keeps_each_buckets_extremes(client, editor, run):
    logged = await log_random_series(client, editor, run, 20_000, first_step=5)

    chart = await series(client, editor, run["id"], "loss", points=1000)

    tile, origin = tile_origin(5, 20_004, 1000)
    width = chart["bucket_steps"]
    assert width % tile == 0
    assert (20_004 - origin) // width < 250
    assert as_pairs(chart["items"]) == m4(logged, origin, width)
    values = [v for _, v in logged]
    got = [i["value"] for i in chart["items"]]
    assert min(values) in got
    assert max(values) in got
    assert len(got) <= 1000


@pytest.mark.parametrize(("low", "high"), [(1007, 17_996), (256, 8192), (3, 600)])
async def test_a_chart_of_a_step_range_reads_the_cut_tiles_points(client, editor, run, low, high):
    logged = await log_random_series(client, editor, run, 20_000, seed=low)

    chart = await series(client, editor, run["id"], "loss", points=40, step_from=low, step_to=high)

    inside = [(s, v) for s, v in logged if low <= s < high]
    tile, origin = tile_origin(low, high - 1, 40)
    assert chart["bucket_steps"] % tile == 0
    assert as_pairs(chart["items"]) == m4(inside, origin, chart["bucket_steps"])


async def test_a_chart_with_a_time_range_is_drawn_from_the_points(client, editor, run):
    logged = await log_random_series(client, editor, run, 3_000, seed=3)

    chart = await series(
        client, editor, run["id"], "loss", points=100, time_from=at(100), time_to=at(2_100)
    )

    inside = [(s, v) for s, v in logged if 100 <= s < 2_100]
    width = chart["bucket_steps"]
    assert width == math.ceil(2_000 / 25)
    assert as_pairs(chart["items"]) == m4(inside, 100, width)


async def test_nan_is_never_a_buckets_lowest_or_highest(client, editor, run):
    logged = await log_random_series(client, editor, run, 5_000, seed=11, nan_every=3)

    chart = await series(client, editor, run["id"], "loss", points=100)

    _tile, origin = tile_origin(0, 4_999, 100)
    expected = m4(logged, origin, chart["bucket_steps"])
    got = as_pairs(chart["items"])
    assert len(got) == len(expected)
    for (step, value), (want_step, want) in zip(got, expected, strict=True):
        assert step == want_step
        assert value == want or (math.isnan(value) and math.isnan(want))


async def test_a_chart_drawn_from_too_many_points_is_422(
    pgsql, aiohttp_client, make_settings, clock, editor, experiment
):
    from experiment_service.app import create_app

    client = await aiohttp_client(
        create_app(make_settings("experiment", metrics_chart_max_scanned=500), clock=clock)
    )
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    await log_random_series(client, editor, run, 1_000)

    response = await client.get(
        series_path(run["id"], "loss"),
        params={"points": "100", "time_from": at(0)},
        headers=editor.headers,
    )

    await assert_problem(response, 422, "too_many_points")
    chart = await series(client, editor, run["id"], "loss", points=100)  # from the tiles
    assert len(chart["items"]) <= 100


async def test_a_chart_of_another_projects_run_is_404(client, auth_stub, editor, run):
    await log_metrics(client, editor, run["id"], [point("x", 1.0)])
    stranger = auth_stub.member(uuid.uuid4(), "owner")

    response = await client.get(
        series_path(run["id"], "x"), params={"points": "4"}, headers=stranger.headers
    )

    await assert_problem(response, 404, "run_not_found")
