"""Readings of several sensors on one time grid, and how late each sensor's readings arrive.

The grid is start, start + step, … (< end), with start rounded up to a multiple of the step from
ORIGIN, so that the same step always gives the same grid points. At a grid point t a sensor's
value is, by `fill`:
- `none`: its latest reading in (t - step, t], else null (no reading in that step);
- `previous`: its latest reading at or before t, however old, else null;
- `linear`: interpolated between its latest reading at or before t and its earliest after t
  (the reading itself when one is exactly at t), null outside its readings (no extrapolation).
`receive_lag` (seconds from a reading's device timestamp to its arrival) shows clock drift.
"""

import bisect
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

# Where bucket and grid boundaries start: 2000-01-01T00:00:00Z (a Saturday), then every width.
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)

Fill = Literal["none", "previous", "linear"]
MAX_POINTS = 10_000


_MICROSECOND = timedelta(microseconds=1)


def _grid_span(start: datetime, end: datetime, step: timedelta) -> tuple[int, int]:
    """(k, n): the grid over [start, end) is ORIGIN + (k + i)·step for i < n. Integer
    arithmetic only, so a range of any length costs nothing to measure."""
    width = step // _MICROSECOND
    first = -(-((start - ORIGIN) // _MICROSECOND) // width)  # start rounded up onto the grid
    stop = -(-((end - ORIGIN) // _MICROSECOND) // width)  # the first point at or after end
    return first, max(0, stop - first)


def grid_count(start: datetime, end: datetime, step: timedelta) -> int:
    """How many grid points [start, end) holds, without building them."""
    return _grid_span(start, end, step)[1]


def grid(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    first, count = _grid_span(start, end, step)
    return [ORIGIN + (first + k) * step for k in range(count)]


def align(
    times: Sequence[datetime],
    values: Sequence[float],
    points: Sequence[datetime],
    step: timedelta,
    fill: Fill,
) -> list[float | None]:
    """`times` ascending (readings of one sensor, including the one just before the grid and
    the one just after it, when there are)."""
    aligned: list[float | None] = []
    for point in points:
        at_or_before = bisect.bisect_right(times, point) - 1
        if fill == "none":
            hit = at_or_before >= 0 and point - times[at_or_before] < step
            aligned.append(values[at_or_before] if hit else None)
        elif fill == "previous":
            aligned.append(values[at_or_before] if at_or_before >= 0 else None)
        else:
            aligned.append(_interpolated(times, values, at_or_before, point))
    return aligned


def _interpolated(
    times: Sequence[datetime], values: Sequence[float], before: int, point: datetime
) -> float | None:
    if before < 0:
        return None
    if times[before] == point:
        return values[before]
    after = before + 1
    if after >= len(times):
        return None
    span = (times[after] - times[before]).total_seconds()
    share = (point - times[before]).total_seconds() / span
    return values[before] + (values[after] - values[before]) * share


def aligned_series(
    rows: Sequence[Mapping[str, Any]], points: Sequence[datetime], step: timedelta, fill: Fill
) -> tuple[list[float | None], dict[str, Any] | None]:
    """One sensor's values on the grid and its receive lag, from its rows (`timestamp`,
    `value`, `received_at`; the readings inside the grid's window and the one just before and
    after it). CPU work only: run it off the event loop."""
    ordered = sorted(rows, key=lambda row: row["timestamp"])  # stable: ties keep their order
    times = [row["timestamp"] for row in ordered]
    values = [row["value"] for row in ordered]
    lags = [(row["received_at"] - row["timestamp"]).total_seconds() for row in ordered]
    return align(times, values, points, step, fill), receive_lag(lags)


def receive_lag(lags: Sequence[float]) -> dict[str, Any] | None:
    """Seconds from device time to arrival: min, median, max (None without readings)."""
    if not lags:
        return None
    return {"min": min(lags), "median": statistics.median(lags), "max": max(lags)}
