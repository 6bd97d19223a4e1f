"""A batch of run metrics as training code logs it, checked all at once, and what it adds to the
run's summaries and tiles.

    {"metrics": [{"name": "loss", "value": 0.25, "step": 3, "timestamp": "…Z"}, …],
     "batch_id": "optional, makes a resend a no-op"}

Points are checked in one plain loop into parallel lists, with no object per point (as telemetry
readings are, backend_common.batches): all or nothing, every bad point reported by index and
field. A value is a JSON number, or one of the strings "NaN", "Infinity", "-Infinity" (JSON has
no literal for them; the bare tokens Python's json module writes are read too, see the API);
such values are kept as they are. A point without a step takes the next step of its name (see
`fill_steps`); without a timestamp, the time the batch was received.

`partials` folds a batch into the per-name summary and per-tile extremes it adds, so the stored
ones are merged with it in SQL instead of being recomputed from the points.
"""

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend_common.batches import (
    BatchErrors,
    Limits,
    client_batch_id,
    envelope,
    instant,
    items,
)
from backend_common.downsampling import Extremes

MAX_NAME_LENGTH = 250
STEP_MIN, STEP_MAX = -(2**63), 2**63 - 1
# Tiles of these many steps are kept per metric: a chart reads the widest that still fits, so
# at most 4 of them (the factor between widths) per bucket.
TILE_WIDTHS = tuple(4**k for k in range(2, 11))  # 16, 64, 256, … 1,048,576
NON_FINITE: Mapping[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

_BODY_FIELDS = frozenset({"metrics", "batch_id"})
_POINT_FIELDS = frozenset({"name", "value", "step", "timestamp"})


@dataclass
class MetricBatch:
    client_batch_id: str | None
    received_at: datetime
    names: list[str]
    values: list[float]
    steps: list[int | None]  # None: the next step of its name (fill_steps)
    timestamps: list[datetime]

    def __len__(self) -> int:
        return len(self.names)

    def missing_steps(self) -> list[str]:
        """The names (each once, sorted) that have a point without a step."""
        return sorted(
            {name for name, step in zip(self.names, self.steps, strict=True) if step is None}
        )


def parse_metrics(document: object, *, received_at: datetime, limits: Limits) -> MetricBatch:
    """The batch in `document` (decoded JSON), or BatchInvalid listing every problem."""
    errors = BatchErrors("points", "point")
    body = envelope(document, _BODY_FIELDS, errors)
    batch_id = client_batch_id(body.get("batch_id"), errors)
    points = items(body.get("metrics"), "metrics", errors, most=limits.max_items)
    batch = MetricBatch(batch_id, received_at, [], [], [], [])
    _points(points, batch, received_at + limits.max_future, errors)
    errors.check(len(points))
    return batch


def _points(points: list[Any], batch: MetricBatch, latest: datetime, errors: BatchErrors) -> None:
    for index, point in enumerate(points):
        if type(point) is not dict:
            errors.add(f"metrics.{index}", "must be an object", "model_type", item=index)
            continue
        valid = not (
            (len(point) > 4 or point.keys() - _POINT_FIELDS)
            and errors.unknown(point.keys() - _POINT_FIELDS, f"metrics.{index}.", item=index)
        )
        name = point.get("name")
        if type(name) is not str or not 1 <= len(name) <= MAX_NAME_LENGTH:
            errors.add(
                f"metrics.{index}.name",
                f"must be a string of 1 to {MAX_NAME_LENGTH} characters",
                "string_type",
                item=index,
            )
            valid = False
        elif "\x00" in name:
            errors.add(
                f"metrics.{index}.name", "must not contain NUL (\\u0000)", "string_nul", item=index
            )
            valid = False
        value = _value(point.get("value"), index, errors)
        step = point.get("step")
        if step is not None and (type(step) is not int or not STEP_MIN <= step <= STEP_MAX):
            errors.add(f"metrics.{index}.step", "must be a 64-bit integer", "int_type", item=index)
            valid = False
        timestamp: datetime | None = batch.received_at
        if point.get("timestamp") is not None:
            timestamp = instant(
                point["timestamp"], f"metrics.{index}.timestamp", errors, item=index, latest=latest
            )
        if value is None or timestamp is None or not valid:
            continue
        assert type(name) is str
        batch.names.append(name)
        batch.values.append(value)
        batch.steps.append(step)
        batch.timestamps.append(timestamp)


def _value(value: Any, index: int, errors: BatchErrors) -> float | None:
    kind = type(value)
    if kind is float:
        return float(value)
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            pass
    elif kind is str and value in NON_FINITE:
        return NON_FINITE[value]
    errors.add(
        f"metrics.{index}.value",
        'must be a number (a double), or "NaN", "Infinity" or "-Infinity"',
        "float_type",
        item=index,
    )
    return None


def fill_steps(batch: MetricBatch, highest: Mapping[str, int]) -> list[int]:
    """The batch's steps, each missing one the step after the highest its name has so far: in
    `highest` (the stored ones), or earlier in the batch; 0 for a name's first point."""
    top = dict(highest)
    steps: list[int] = []
    for name, step in zip(batch.names, batch.steps, strict=True):
        if step is None:
            step = top[name] + 1 if name in top else 0
        if name not in top or step > top[name]:
            top[name] = step
        steps.append(step)
    return steps


@dataclass
class Summary:
    """What a batch adds to one name's summary (min, max and sum of its finite values)."""

    name: str
    count: int
    finite_count: int
    min: float | None
    max: float | None
    sum: float | None
    last: float
    last_step: int
    last_timestamp: datetime


@dataclass(frozen=True)
class Tile:
    name: str
    width: int
    tile: int
    extremes: Extremes[int]


def partials(batch: MetricBatch, steps: list[int]) -> tuple[list[Summary], list[Tile]]:
    """The summaries and tiles the batch adds, sorted by name (then width and tile) so that
    concurrent batches lock the stored rows in one order."""
    # One pass over the points into plain lists (the hot loop: no object per point):
    # a name's [count, finite_count, min, max, sum, last, last_step, last_timestamp], a finest
    # tile's [first_step, first, last_step, last, min_step, min, max_step, max].
    summaries: dict[str, list[Any]] = {}
    finest: dict[tuple[str, int], list[Any]] = {}
    shift = TILE_WIDTHS[0].bit_length() - 1
    for name, step, value, timestamp in zip(
        batch.names, steps, batch.values, batch.timestamps, strict=True
    ):
        finite = value - value == 0  # false for NaN and ±Infinity, cheaper than math.isfinite
        summary = summaries.get(name)
        if summary is None:
            low = value if finite else None
            summaries[name] = [1, int(finite), low, low, low, value, step, timestamp]
        else:
            summary[0] += 1
            if finite:
                if summary[4] is None:
                    summary[1:5] = [1, value, value, value]
                else:
                    summary[1] += 1
                    if value < summary[2]:
                        summary[2] = value
                    if value > summary[3]:
                        summary[3] = value
                    summary[4] += value
            if step > summary[6] or (step == summary[6] and timestamp >= summary[7]):
                summary[5:8] = [value, step, timestamp]
        key = (name, step >> shift)
        tile = finest.get(key)
        if tile is None:
            finest[key] = [step, value, step, value] + [step, value] * 2 if finite else [
                step, value, step, value, None, None, None, None
            ]  # fmt: skip
        else:
            if step < tile[0]:
                tile[0:2] = [step, value]
            if step >= tile[2]:
                tile[2:4] = [step, value]
            if finite:
                if tile[5] is None or value < tile[5]:
                    tile[4:6] = [step, value]
                if tile[7] is None or value > tile[7]:
                    tile[6:8] = [step, value]
    extremes = {key: _extremes(tile) for key, tile in finest.items()}
    tiles = [Tile(name, TILE_WIDTHS[0], tile, e) for (name, tile), e in extremes.items()]
    tiles += _coarser(extremes)
    tiles.sort(key=lambda t: (t.name, t.width, t.tile))
    return [Summary(name, *summaries[name]) for name in sorted(summaries)], tiles


def _extremes(tile: list[Any]) -> Extremes[int]:
    first_step, first, last_step, last, min_step, low, max_step, high = tile
    return Extremes(
        (first_step, first),
        (last_step, last),
        None if low is None else (min_step, low),
        None if high is None else (max_step, high),
    )


def _coarser(finest: dict[tuple[str, int], Extremes[int]]) -> list[Tile]:
    """The tiles of every wider width, merged from those of the width below."""
    tiles: list[Tile] = []
    below = finest
    for narrow, wide in itertools.pairwise(TILE_WIDTHS):
        shift = (wide // narrow).bit_length() - 1
        merged: dict[tuple[str, int], Extremes[int]] = {}
        for (name, tile), extremes in below.items():
            key = (name, tile >> shift)
            into = merged.get(key)
            if into is None:
                merged[key] = Extremes(extremes.first, extremes.last, extremes.low, extremes.high)
            else:
                into.add(extremes)
        tiles += [Tile(name, wide, tile, extremes) for (name, tile), extremes in merged.items()]
        below = merged
    return tiles
