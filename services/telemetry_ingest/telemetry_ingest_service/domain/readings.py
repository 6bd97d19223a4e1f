"""Reading stored telemetry: history pages, per-bucket aggregates, exports.

Who may read: a member (any role) of a project the sensor belongs to, or of the project of the
run or capture session asked for. Anything else does not exist for the caller (404).

Buckets are aligned to ORIGIN (2000-01-01T00:00:00Z, a Saturday): a bucket of width w starts at
ORIGIN + k·w. `points=N` picks the narrowest standard width that gives at most N buckets over
the range.
"""

import uuid
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from backend_common.db import Database
from backend_common.rbac import Caller
from telemetry_ingest_service.domain.alignment import (
    MAX_POINTS,
    ORIGIN,
    Fill,
    align,
    grid,
    receive_lag,
)
from telemetry_ingest_service.domain.errors import (
    CaptureSessionNotFound,
    NoRange,
    RunNotFound,
    SensorNotFound,
    TooManyBuckets,
    TooManyPoints,
    TooManyReadings,
)
from telemetry_ingest_service.repositories.readings import ReadingRepository, Selection

BUCKETS: dict[str, timedelta] = {
    "10s": timedelta(seconds=10),
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
MAX_BUCKETS = 10_000  # per sensor and request
MAX_READINGS = 500_000  # per sensor, for an alignment


def bucket_count(start: datetime, end: datetime, width: timedelta) -> int:
    """How many buckets of the grid [start, end) touches."""
    first = (start - ORIGIN) // width
    last = -((ORIGIN - end) // width) - 1  # the bucket holding the instant just before `end`
    return last - first + 1


def bucket_for_points(start: datetime, end: datetime, points: int) -> str:
    """The narrowest standard bucket giving at most `points` buckets over [start, end) (the
    widest, 1d, if none does)."""
    for name, width in BUCKETS.items():
        if bucket_count(start, end, width) <= points:
            return name
    return "1d"


class Readings:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def aligned(
        self, caller: Caller, selection: Selection, *, step: timedelta, fill: Fill, layer: str
    ) -> dict[str, Any]:
        """The selection's sensors on one grid over [from, to), or over the capture session."""
        async with self._db.connection() as conn:
            repository = ReadingRepository(conn)
            await self._check_access(caller, repository, selection)
            start, end = selection.start, selection.end
            if selection.capture_session_id is not None and (start is None or end is None):
                started, stopped = await repository.session_span(selection.capture_session_id)
                start = start or started
                end = end or stopped or datetime.now(UTC)
            if start is None or end is None:
                raise NoRange()
            points = grid(start, end, step)
            if len(points) > MAX_POINTS:
                raise TooManyPoints(f"[from, to) holds more than {MAX_POINTS} steps.")
            series = []
            for sensor_id in selection.sensor_ids:
                rows = []
                if points:
                    window = replace(
                        selection,
                        sensor_ids=(sensor_id,),
                        start=points[0] - step,
                        end=points[-1],
                        end_inclusive=True,
                    )
                    rows = await repository.around(window, layer=layer, limit=MAX_READINGS + 1)
                if len(rows) > MAX_READINGS:
                    raise TooManyReadings(
                        f"A sensor has more than {MAX_READINGS} readings in the range."
                    )
                rows.sort(key=lambda row: row["timestamp"])
                times = [row["timestamp"] for row in rows]
                values = [row["value"] for row in rows]
                lags = [(row["received_at"] - row["timestamp"]).total_seconds() for row in rows]
                series.append(
                    {
                        "sensor_id": sensor_id,
                        "values": align(times, values, points, step, fill),
                        "receive_lag": receive_lag(lags),
                    }
                )
        return {"times": points, "series": series}

    async def check(self, caller: Caller, selection: Selection) -> None:
        """Raises the not-found error of what the caller may not read."""
        async with self._db.connection() as conn:
            await self._check_access(caller, ReadingRepository(conn), selection)

    async def page(
        self,
        caller: Caller,
        selection: Selection,
        *,
        after: tuple[datetime, int, int] | None,
        limit: int,
    ) -> list[Any]:
        async with self._db.connection() as conn:
            repository = ReadingRepository(conn)
            await self._check_access(caller, repository, selection)
            return await repository.page(selection, after=after, limit=limit)

    async def stream(self, caller: Caller, selection: Selection) -> AsyncGenerator[Any, None]:
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            repository = ReadingRepository(conn)
            await self._check_access(caller, repository, selection)
            async for row in repository.stream(selection):
                yield row

    async def aggregate(
        self, caller: Caller, selection: Selection, *, layer: str, bucket: str
    ) -> list[dict[str, Any]]:
        assert selection.start is not None
        assert selection.end is not None
        width = BUCKETS[bucket]
        if (selection.end - selection.start) / width > MAX_BUCKETS:
            raise TooManyBuckets(f"[from, to) holds more than {MAX_BUCKETS} buckets of {bucket}.")
        async with self._db.connection() as conn:
            repository = ReadingRepository(conn)
            await self._check_access(caller, repository, selection)
            return await repository.aggregate(selection, layer=layer, width=width, origin=ORIGIN)

    @staticmethod
    async def _check_access(
        caller: Caller, repository: ReadingRepository, selection: Selection
    ) -> None:
        if selection.sensor_ids:
            projects = await repository.sensor_projects(list(selection.sensor_ids))
            for sensor_id in selection.sensor_ids:
                if not await _member_of_any(caller, projects.get(sensor_id, [])):
                    raise SensorNotFound(f"No such sensor: {sensor_id}.")
        if selection.run_id is not None:
            project = await repository.run_project(selection.run_id)
            if project is None or not await _member_of_any(caller, [project]):
                raise RunNotFound()
        if selection.capture_session_id is not None:
            project = await repository.session_project(selection.capture_session_id)
            if project is None or not await _member_of_any(caller, [project]):
                raise CaptureSessionNotFound()


async def _member_of_any(caller: Caller, project_ids: list[uuid.UUID]) -> bool:
    for project_id in project_ids:
        if await caller.role_in(project_id) is not None:
            return True
    return False
