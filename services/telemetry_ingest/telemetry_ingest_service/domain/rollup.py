"""The per-minute rollup that 1-minute and coarser aggregates are read from.

Each stored batch queues the minutes it touched (in its own transaction). A reader takes the
stored rollup for the whole minutes of its range that are not queued, and computes the rest
from the readings: the queued minutes and the partial minutes at the range's edges. So an
answer is the same whether a minute was refreshed yet or not, and the same as one computed
from the readings alone.

The refresher recomputes queued minutes once they are over (plus a grace for batches still on
their way), so a live sensor's current minute is recomputed once, not with every batch. One
refresher works at a time (an advisory lock); several processes may run one.
"""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from backend_common.clock import Clock
from backend_common.db import Database
from telemetry_ingest_service.domain.alignment import ORIGIN
from telemetry_ingest_service.repositories.rollup import Pending, RollupRepository, Window

MINUTE = timedelta(minutes=1)
_TAKE = 100  # queued ranges per refresh transaction


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
        layer=layer,
        stored=stored,
        windows=windows,
        width=width,
        origin=ORIGIN,
    )


class Rollup:
    def __init__(self, db: Database, *, clock: Clock, grace: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._grace = grace

    async def refresh(self) -> int:
        """Recomputes the queued minutes that are over; how many queued ranges it took."""
        taken = 0
        while True:
            async with self._db.transaction() as conn:
                repository = RollupRepository(conn)
                if not await repository.lock():
                    return taken  # another process is at it
                due = minute_floor(self._clock() - self._grace) - MINUTE
                ranges = await repository.take_due(due, _TAKE)
                windows = merged(
                    Window(r.sensor_id, r.first_minute, r.last_minute + MINUTE) for r in ranges
                )
                await repository.recompute(windows)
            taken += len(ranges)
            if len(ranges) < _TAKE:
                return taken
