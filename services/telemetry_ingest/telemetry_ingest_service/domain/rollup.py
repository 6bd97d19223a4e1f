"""The per-minute rollup that 1-minute and coarser aggregates are read from.

Each stored batch queues the minutes it touched (in its own transaction). A reader takes the
stored rollup for the whole minutes of its range that are not queued, and computes the rest
from the readings: the queued minutes and the partial minutes at the range's edges. So an
answer is the same whether a minute was refreshed yet or not, and the same as one computed
from the readings alone.

The refresher recomputes queued minutes once they are over (plus a grace for batches still on
their way), so a live sensor's current minute is recomputed once, not with every batch. Its
work is bounded however fast batches come: a pass takes what was queued when it began, every
entry of a sensor at once (a minute that a thousand late batches queued is recomputed once),
and each transaction recomputes as many sensor-minutes, shared equally among its sensors, as
took about `_TRANSACTION` seconds at the last one's pace (a 1 Hz sensor's minutes are cheap, a
10 kHz sensor's are not). The rest is queued again and taken in the same pass while the pass
lasts less than `_PASS`. One refresher works at a time (an advisory lock); several processes
may run one.
"""

import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from backend_common.clock import Clock
from backend_common.db import Database
from telemetry_ingest_service.domain.alignment import ORIGIN
from telemetry_ingest_service.domain.retention import raw_cutoffs
from telemetry_ingest_service.repositories.rollup import Pending, RollupRepository, Window

MINUTE = timedelta(minutes=1)
_SENSORS = 50  # sensors whose due entries one refresh transaction takes
_MINUTES = (10, 240, 100_000)  # sensor-minutes a refresh transaction recomputes: least, first, most
_TRANSACTION = 1.0  # seconds a refresh transaction aims at
_PASS = 10.0  # seconds after which a pass takes no more


def minute_floor(at: datetime) -> datetime:
    return ORIGIN + (at - ORIGIN) // MINUTE * MINUTE


def minute_ceil(at: datetime) -> datetime:
    floor = minute_floor(at)
    return floor if floor == at else floor + MINUTE


def merged(windows: Iterable[Window]) -> list[Window]:
    """The windows with those of one sensor that overlap or touch joined into one."""
    out: list[Window] = []
    for window in sorted(windows, key=lambda w: (str(w.sensor_id), w.start)):
        last = out[-1] if out else None
        if last and last.sensor_id == window.sensor_id and window.start <= last.end:
            out[-1] = Window(last.sensor_id, last.start, max(last.end, window.end))
        else:
            out.append(window)
    return out


def within_budget(windows: Sequence[Window], minutes: int) -> tuple[list[Window], list[Window]]:
    """The windows (of whole minutes) cut to an equal share of `minutes` each (one at least),
    and the rest. Sensors caught up together read the same stretch of the table at a time."""
    share = max(1, minutes // max(1, len(windows)))
    kept: list[Window] = []
    rest: list[Window] = []
    for window in windows:
        cut = min(window.end, window.start + share * MINUTE)
        kept.append(Window(window.sensor_id, window.start, cut))
        if cut < window.end:
            rest.append(Window(window.sensor_id, cut, window.end))
    return kept, rest


def read_plan(
    sensor_ids: Sequence[uuid.UUID], start: datetime, end: datetime, pending: Sequence[Pending]
) -> tuple[tuple[datetime, datetime], list[Window]]:
    """Which whole minutes [stored) may come from the rollup, and the windows to read from the
    readings instead: the edges of [start, end) that are not whole minutes, and queued minutes."""
    inner_start, inner_end = minute_ceil(start), minute_floor(end)
    if inner_start >= inner_end:
        return (inner_start, inner_start), merged(Window(s, start, end) for s in sensor_ids)
    windows = []
    for sensor_id in sensor_ids:
        windows += [Window(sensor_id, start, inner_start), Window(sensor_id, inner_end, end)]
        for queued in pending:
            if queued.sensor_id in (sensor_id, None):
                first = max(queued.first_minute, inner_start)
                after = min(queued.last_minute + MINUTE, inner_end)
                windows.append(Window(sensor_id, first, after))
    return (inner_start, inner_end), merged(w for w in windows if w.start < w.end)


async def aggregate(
    repository: RollupRepository,
    *,
    sensor_ids: Sequence[uuid.UUID],
    signals: Sequence[str],
    start: datetime,
    end: datetime,
    layer: str,
    width: timedelta,
) -> list[dict[str, Any]]:
    """Buckets of `width` (whole minutes) over [start, end); the repository's connection
    is in a repeatable-read transaction, so the queue and the rollup agree."""
    pending = await repository.pending(sensor_ids, minute_floor(start), end)
    stored, windows = read_plan(sensor_ids, start, end, pending)
    return await repository.aggregate(
        sensor_ids=sensor_ids,
        signals=signals,
        layer=layer,
        stored=stored,
        windows=windows,
        width=width,
        origin=ORIGIN,
    )


async def _split_at_raw_retention(
    conn: asyncpg.Connection, windows: list[Window], now: datetime
) -> tuple[list[Window], list[Window]]:
    """The windows cut where their project's raw retention ends: the minutes still within it
    (recomputed), and those past it, whose readings go soon or are gone: only minutes with no
    rollup yet are computed there, so a late reading cannot replace a minute alone."""
    sensor_ids = [w.sensor_id for w in windows if w.sensor_id is not None]
    cutoffs = await raw_cutoffs(conn, sensor_ids, now) if sensor_ids else {}
    if not cutoffs:
        return windows, []
    recent, old = [], []
    for window in windows:
        cutoff = cutoffs.get(window.sensor_id) if window.sensor_id is not None else None
        split = window.start if cutoff is None else min(window.end, minute_ceil(cutoff))
        if window.start < split:
            old.append(Window(window.sensor_id, window.start, split))
        if max(split, window.start) < window.end:
            recent.append(Window(window.sensor_id, max(split, window.start), window.end))
    return recent, old


class Rollup:
    def __init__(self, db: Database, *, clock: Clock, grace: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._grace = grace
        self._minutes = _MINUTES[1]

    async def lag(self) -> tuple[int, timedelta]:
        """The queue: how many ranges, and for how long the oldest one's rollup has been owed
        (since its last minute ended; zero when nothing is queued). The refresher keeps it
        under a minute plus the grace and its interval."""
        async with self._db.connection() as conn:
            ranges, oldest_end = await RollupRepository(conn).backlog()
        if oldest_end is None:
            return ranges, timedelta(0)
        return ranges, max(timedelta(0), self._clock() - oldest_end)

    async def refresh(self) -> int:
        """Recomputes the queued minutes that are over; how many queued entries it took."""
        taken, high_water = 0, None
        deadline = time.monotonic() + _PASS
        while (started := time.monotonic()) < deadline:
            async with self._db.transaction() as conn:
                repository = RollupRepository(conn)
                if not await repository.lock():
                    break  # another process is at it
                if high_water is None:
                    high_water = await repository.high_water()
                now = self._clock()
                due = minute_floor(now - self._grace) - MINUTE
                ranges = await repository.take_due(due, high_water, _SENSORS)
                if not ranges:
                    break
                windows, rest = within_budget(
                    merged(
                        Window(r.sensor_id, r.first_minute, r.last_minute + MINUTE) for r in ranges
                    ),
                    self._minutes,
                )
                if rest:
                    requeued = [Pending(w.sensor_id, w.start, w.end - MINUTE) for w in rest]
                    high_water = max(high_water, await repository.queue(requeued))
                recent, old = await _split_at_raw_retention(conn, windows, now)
                await repository.recompute(recent)
                await repository.fill_missing(old)
            taken += len(ranges)
            self._pace(sum((w.end - w.start) // MINUTE for w in windows), started)
        return taken

    def _pace(self, minutes: int, started: float) -> None:
        """Sizes the next transaction from this one's pace (growing fourfold at most, in case
        the next minutes are busier)."""
        seconds = time.monotonic() - started
        if minutes and seconds > 0:
            least, _, most = _MINUTES
            fitting = int(minutes * _TRANSACTION / seconds)
            self._minutes = max(least, min(most, 4 * self._minutes, fitting))
