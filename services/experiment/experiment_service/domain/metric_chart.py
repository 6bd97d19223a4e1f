"""A metric series cut to at most N points for a chart, keeping its extremes.

A range that holds at most N points comes back whole. Otherwise the steps of the range are cut
into B = N // 4 buckets, each drawn as its first, lowest, highest and last point
(backend_common.downsampling). The buckets are built from the tiles kept on write
(run_metric_tiles), not from the points: of widths 16, 64, 256, … steps, the widest tile T no
wider than a bucket needs; buckets are whole multiples of T wide and start at a multiple of T,
so each is made of whole tiles (at most 4 a bucket, N tiles in all, merged in SQL). Where a step
bound of the filter cuts through a tile, the points of that part-tile are read instead. A range
too narrow for the finest tiles, and any range with a time filter (tiles are per step), is drawn
from its points, up to `max_scanned` of them.
"""

import itertools
import math
import uuid
from collections.abc import Iterable
from dataclasses import replace

from backend_common.downsampling import Extremes, keep_extremes, narrowest
from experiment_service.domain.errors import TooManyMetricPoints
from experiment_service.domain.metric_batch import TILE_WIDTHS
from experiment_service.domain.metric_models import Chart, SeriesFilter
from experiment_service.repositories.metric_series import SeriesRepository

POINTS_PER_BUCKET = 4
MAX_SCANNED = 200_000  # points one chart may be drawn from directly (a setting)


async def chart(
    series: SeriesRepository,
    run_id: uuid.UUID,
    name: str,
    flt: SeriesFilter,
    *,
    points: int,
    max_scanned: int = MAX_SCANNED,
) -> Chart:
    if await series.count_upto(run_id, name, flt, most=points + 1) <= points:
        return Chart(await series.points(run_id, name, flt, limit=points), bucket_steps=None)
    buckets = max(points // POINTS_PER_BUCKET, 1)
    extent = None if flt.by_time else await series.step_extent(run_id, name, flt)
    if extent is not None:
        low, high = extent
        least = math.ceil((high - low + 1) / buckets)  # steps a bucket must span at least
        tile = max((width for width in TILE_WIDTHS if width <= least), default=None)
        if tile is not None:
            return await _from_tiles(
                series, run_id, name, flt, (low, high), tile, least, buckets, max_scanned
            )
    scanned = await series.points(run_id, name, flt, limit=max_scanned + 1)
    if len(scanned) > max_scanned:
        raise TooManyMetricPoints(
            f"The range holds more than {max_scanned} points to draw a chart from:"
            " narrow it, or give a step range without a time range."
        )
    low, high = scanned[0][0], scanned[-1][0]
    width = math.ceil((high - low + 1) / buckets)  # from `low`, that many buckets at most
    return Chart(_keep_extremes(scanned, (), [], origin=low, width=width), bucket_steps=width)


async def _from_tiles(
    series: SeriesRepository,
    run_id: uuid.UUID,
    name: str,
    flt: SeriesFilter,
    extent: tuple[int, int],
    tile: int,
    least: int,
    buckets: int,
    max_scanned: int,
) -> Chart:
    """Buckets of whole tiles of `tile` steps over the steps [low, high] of `extent`."""
    low, high = extent
    origin = low // tile * tile
    first_width = math.ceil(least / tile) * tile
    candidates = ((width, width) for width in itertools.count(first_width, tile))
    width = narrowest(candidates, low, high + 1, most=buckets, origin=origin)
    # A tile is whole unless a bound of the filter cuts through it (the series' own first and
    # last steps never do: nothing lies beyond them).
    first, last = low // tile, high // tile
    cut_low = flt.step_from is not None and first * tile < flt.step_from
    cut_high = flt.step_to is not None and (last + 1) * tile > flt.step_to
    lower: list[tuple[int, float]] = []
    upper: list[tuple[int, float]] = []
    if cut_low or (cut_high and first == last):
        upto = high + 1 if first == last else (first + 1) * tile
        lower = await series.points(run_id, name, replace(flt, step_to=upto), limit=max_scanned)
        first += 1
    if cut_high and first <= last:
        edge = replace(flt, step_from=last * tile)
        upper = await series.points(run_id, name, edge, limit=max_scanned)
        last -= 1
    buckets_of_tiles = []
    if first <= last:
        buckets_of_tiles = await series.tile_buckets(
            run_id,
            name,
            width=tile,
            first=first,
            last=last,
            origin=origin // tile,
            per_bucket=width // tile,
        )
    chart = _keep_extremes(lower, buckets_of_tiles, upper, origin=origin, width=width)
    return Chart(chart, bucket_steps=width)


def _keep_extremes(
    lower: list[tuple[int, float]],
    buckets: Iterable[tuple[int, Extremes[int]]],
    upper: list[tuple[int, float]],
    *,
    origin: int,
    width: int,
) -> list[tuple[int, float]]:
    """The series of buckets of `width` steps from `origin`: raw points below the tiles, buckets
    merged from tiles (by bucket number), raw points above them, merged in step order."""

    def raw(points: list[tuple[int, float]]) -> Iterable[tuple[int, Extremes[int]]]:
        return (((step - origin) // width, Extremes.of(step, value)) for step, value in points)

    return keep_extremes(itertools.chain(raw(lower), buckets, raw(upper)))
