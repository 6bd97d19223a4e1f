"""Series too long to draw whole, cut into buckets that keep their extremes.

Buckets lie on a grid: a bucket of width w starts at origin + k·w (telemetry: instants from
2000-01-01; run metrics: steps). `narrowest` picks, of some widths, the narrowest that gives at
most N buckets over a range.

A chart as wide as the buckets looks the same drawn from four points per bucket as from all of
them (the M4 method): the first, the lowest, the highest and the last. `Extremes` holds those
four of a bucket; partial ones (of pieces of a bucket, e.g. rows kept on write) merge, so a
bucket need not be computed from its points. The lowest and highest are of the finite values
only (NaN and infinities have no place on a value axis); first and last are as logged.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K")
P = TypeVar("P", int, datetime)  # a point's position: a step, an instant

Point = tuple[P, float]


@overload
def buckets_spanned(start: datetime, end: datetime, width: timedelta, origin: datetime) -> int: ...
@overload
def buckets_spanned(start: int, end: int, width: int, origin: int) -> int: ...
def buckets_spanned(start: Any, end: Any, width: Any, origin: Any) -> int:
    """How many buckets of the grid the half-open range [start, end) touches."""
    first = (start - origin) // width
    last = -((origin - end) // width) - 1  # the bucket that holds the instant before `end`
    return int(last - first + 1)


@overload
def narrowest(
    widths: Iterable[tuple[K, timedelta]],
    start: datetime,
    end: datetime,
    *,
    most: int,
    origin: datetime,
) -> K: ...
@overload
def narrowest(
    widths: Iterable[tuple[K, int]], start: int, end: int, *, most: int, origin: int
) -> K: ...
def narrowest(
    widths: Iterable[tuple[K, Any]], start: Any, end: Any, *, most: int, origin: Any
) -> K:
    """The key of the first (narrowest) of `widths` whose grid has at most `most` buckets over
    [start, end); the last one's when none does."""
    found = False
    for key, width in widths:
        found = True
        if buckets_spanned(start, end, width, origin) <= most:
            return key
    if not found:
        raise ValueError("no widths to choose from")
    return key


@dataclass(slots=True)
class Extremes(Generic[P]):
    """The first, lowest, highest and last point of (a piece of) a bucket; `low` and `high` are
    of the finite values, None while there are none."""

    first: Point[P]
    last: Point[P]
    low: Point[P] | None
    high: Point[P] | None

    @classmethod
    def of(cls, position: P, value: float) -> "Extremes[P]":
        """A bucket of one point."""
        point = (position, value)
        finite = point if math.isfinite(value) else None
        return cls(point, point, finite, finite)

    def add(self, other: "Extremes[P]") -> None:
        """Merges `other`, which arrived later: on a tie of positions its last point wins, and
        this one's first, lowest and highest."""
        if other.first[0] < self.first[0]:
            self.first = other.first
        if other.last[0] >= self.last[0]:
            self.last = other.last
        if other.low is not None and (self.low is None or other.low[1] < self.low[1]):
            self.low = other.low
        if other.high is not None and (self.high is None or other.high[1] > self.high[1]):
            self.high = other.high

    def points(self) -> list[Point[P]]:
        """Its (up to four) points in position order, each once."""
        chosen = [self.first]
        for point in (self.low, self.high, self.last):
            if point is not None and not any(_same(point, seen) for seen in chosen):
                chosen.append(point)
        chosen.sort(key=_position)
        return chosen


def _position(point: Point[P]) -> P:
    return point[0]


def _same(a: Point[P], b: Point[P]) -> bool:
    """The same point: at one position, with one value (NaN counts as one value here)."""
    return a[0] == b[0] and (a[1] == b[1] or (math.isnan(a[1]) and math.isnan(b[1])))


def keep_extremes(parts: Iterable[tuple[int, Extremes[P]]]) -> list[Point[P]]:
    """The downsampled series of (bucket number, extremes) parts, in arrival order: the parts of
    each bucket merged, then the points of every bucket in bucket order."""
    buckets: dict[int, Extremes[P]] = {}
    for bucket, extremes in parts:
        merged = buckets.get(bucket)
        if merged is None:
            buckets[bucket] = Extremes(extremes.first, extremes.last, extremes.low, extremes.high)
        else:
            merged.add(extremes)
    return [point for bucket in sorted(buckets) for point in buckets[bucket].points()]
