"""Reading stored telemetry: history pages, per-bucket aggregates, alignments, exports.

Who may read: a member (any role) of a project the sensor belongs to, or of the project of the
run or capture session asked for. Anything else does not exist for the caller (404).

Raw values: a project whose raw-value policy is `physical_only` shows its viewers physical
values only. A caller sees raw values when, for each sensor, run and session asked for, a
project that lets them read it also shows them raw values (they are its owner or editor, or it
has no such policy). Otherwise `layer=raw` is refused (403) and readings come without raw_value.

Buckets are aligned to ORIGIN (2000-01-01T00:00:00Z, a Saturday): a bucket of width w starts at
ORIGIN + k·w. `points=N` picks the narrowest standard width that gives at most N buckets over
the range.
"""

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from backend_common.db import Database
from backend_common.downsampling import narrowest
from backend_common.export_budget import ExportLimits, ExportRows, ExportSlots
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller
from telemetry_ingest_service.domain import rollup
from telemetry_ingest_service.domain.alignment import (
    MAX_POINTS,
    ORIGIN,
    Fill,
    aligned_series,
    grid,
    grid_count,
)
from telemetry_ingest_service.domain.batch import DEFAULT_SIGNAL
from telemetry_ingest_service.domain.errors import (
    CaptureSessionNotFound,
    NoRange,
    RawValuesHidden,
    RunNotFound,
    SensorNotFound,
    TooManyBuckets,
    TooManyPoints,
    TooManyReadings,
)
from telemetry_ingest_service.repositories.readings import ReadingRepository, Selection
from telemetry_ingest_service.repositories.rollup import RollupRepository

BUCKETS: dict[str, timedelta] = {
    "10s": timedelta(seconds=10),
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
MAX_BUCKETS = 10_000  # per sensor and request
# Readings one alignment may load, all its sensors together (a setting).
MAX_ALIGNED_READINGS = 500_000
# A reading's fields as the read routes show them, in this order.
READING_FIELDS = (
    "timestamp",
    "received_at",
    "sensor_id",
    "raw_value",
    "physical_value",
    "signal",
    "conversion_status",
    "late",
    "run_id",
    "capture_session_id",
    "meta",
)


def visible_fields(layer: str, *, sees_raw: bool) -> tuple[str, ...]:
    """The raw layer shows raw values only; the physical layer both, or physical values only to
    a caller who may not see raw ones."""
    if layer == "raw":
        if not sees_raw:
            raise RawValuesHidden()
        return tuple(f for f in READING_FIELDS if f != "physical_value")
    return tuple(f for f in READING_FIELDS if sees_raw or f != "raw_value")


def bucket_for_points(start: datetime, end: datetime, points: int) -> str:
    """The narrowest standard bucket giving at most `points` buckets over [start, end) (the
    widest, 1d, if none does)."""
    return narrowest(BUCKETS.items(), start, end, most=points, origin=ORIGIN)


class Readings:
    def __init__(
        self,
        db: Database,
        *,
        rollup_reads: bool = True,
        max_aligned_readings: int = MAX_ALIGNED_READINGS,
        export_limits: ExportLimits | None = None,
    ) -> None:
        self._db = db
        self._rollup_reads = rollup_reads
        self._max_aligned_readings = max_aligned_readings
        self.export_limits = export_limits or ExportLimits()
        self._export_slots = ExportSlots(self.export_limits)

    async def aligned(
        self, caller: Caller, selection: Selection, *, step: timedelta, fill: Fill, layer: str
    ) -> dict[str, Any]:
        """The selection's sensors on one grid over [from, to), or over the capture session: a
        series per sensor and channel."""
        async with self._db.connection() as conn:
            repository = ReadingRepository(conn)
            await self._visible(caller, repository, selection, layer)
            start, end = selection.start, selection.end
            if selection.capture_session_id is not None and (start is None or end is None):
                started, stopped = await repository.session_span(selection.capture_session_id)
                start = start or started
                end = end or stopped or datetime.now(UTC)
            if start is None or end is None:
                raise NoRange()
            count = grid_count(start, end, step)  # measured before anything is built
            if count > MAX_POINTS:
                raise TooManyPoints(
                    f"[from, to) holds {count} steps of {step}, more than {MAX_POINTS}:"
                    " use a longer step or a shorter range."
                )
            points = grid(start, end, step)
            series = []
            budget = self._max_aligned_readings  # for all the sensors of the request together
            loop = asyncio.get_running_loop()
            for sensor_id in selection.sensor_ids:
                of_sensor = []
                kept = await _channels_to_align(repository, sensor_id, selection.signals)
                for signal, keep in kept.items():
                    rows: list[Any] = []
                    if points:
                        window = replace(
                            selection,
                            sensor_ids=(sensor_id,),
                            signals=(signal,),
                            start=_earlier(points[0], step),
                            end=points[-1],
                            end_inclusive=True,
                        )
                        rows = await repository.around(window, layer=layer, limit=budget + 1)
                    # Sorting and aligning up to the whole budget takes a while: off the loop.
                    values, lag, inside = await loop.run_in_executor(
                        None, _series, rows, points, step, fill
                    )
                    del rows
                    budget -= inside
                    if budget < 0:
                        raise TooManyReadings(
                            f"The sensors have more than {self._max_aligned_readings} readings"
                            " in the range together: narrow the range, align fewer sensors or"
                            " channels, or use aggregates."
                        )
                    if keep or inside or any(value is not None for value in values):
                        of_sensor.append(
                            {
                                "sensor_id": sensor_id,
                                "signal": signal,
                                "values": values,
                                "receive_lag": lag,
                            }
                        )
                if not of_sensor:  # a sensor silent over the range still has its series
                    of_sensor.append(
                        {
                            "sensor_id": sensor_id,
                            "signal": DEFAULT_SIGNAL,
                            "values": [None] * len(points),
                            "receive_lag": None,
                        }
                    )
                series += of_sensor
        return {"times": points, "series": series}

    async def fields(self, caller: Caller, selection: Selection, layer: str) -> tuple[str, ...]:
        """The reading fields the caller sees in `layer`; raises the not-found error of what they
        may not read, or RawValuesHidden."""
        async with self._db.connection() as conn:
            return await self._visible(caller, ReadingRepository(conn), selection, layer)

    async def page(
        self, caller: Caller, selection: Selection, *, layer: str, page: PageRequest
    ) -> Page[dict[str, Any]]:
        """A page of readings, with the fields the caller sees of them."""
        async with self._db.connection() as conn:
            repository = ReadingRepository(conn)
            fields = await self._visible(caller, repository, selection, layer)
            rows = await repository.page(selection, page)
        return rows.map(lambda row: {name: row[name] for name in fields})

    @asynccontextmanager
    async def export(
        self, caller: Caller, selection: Selection, *, layer: str
    ) -> AsyncIterator[ExportRows[dict[str, Any]]]:
        """The selected readings in time order, with the fields the caller sees, up to the row
        cap, in one snapshot; an export slot and a connection are held until the block ends.
        Raises the not-found error of what the caller may not read, RawValuesHidden,
        TooManyExports or ExportsBusy."""
        fields = await self.fields(caller, selection, layer)  # roles asked before a slot is held
        limit = self.export_limits.max_rows
        with self._export_slots.slot(caller.user_id):
            async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
                repository = ReadingRepository(conn)
                truncated = await repository.more_than(selection, limit)

                async def rows() -> AsyncGenerator[dict[str, Any], None]:
                    async for row in repository.stream(selection, limit=limit):
                        yield {name: row[name] for name in fields}

                # Closed before the transaction ends, however the reading of it ended.
                async with aclosing(rows()) as selected:
                    yield ExportRows(selected, truncated, max_rows=limit, columns=fields)

    async def aggregate(
        self, caller: Caller, selection: Selection, *, layer: str, bucket: str
    ) -> list[dict[str, Any]]:
        """Per sensor, channel and bucket of the layer's values. Buckets of a minute or wider of
        sensors (not of a run or session) combine the per-minute rollup; the others, and all of
        them with `rollup_reads` off, are computed from the readings with date_bin."""
        assert selection.start is not None
        assert selection.end is not None
        width = BUCKETS[bucket]
        if (selection.end - selection.start) / width > MAX_BUCKETS:
            raise TooManyBuckets(f"[from, to) holds more than {MAX_BUCKETS} buckets of {bucket}.")
        by_sensor = selection.run_id is None and selection.capture_session_id is None
        if self._rollup_reads and by_sensor and selection.sensor_ids and width >= rollup.MINUTE:
            async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
                repository = ReadingRepository(conn)
                await self._visible(caller, repository, selection, layer)
                return await rollup.aggregate(
                    RollupRepository(conn),
                    sensor_ids=selection.sensor_ids,
                    signals=selection.signals,
                    start=selection.start,
                    end=selection.end,
                    layer=layer,
                    width=width,
                )
        async with self._db.transaction(readonly=True) as conn:
            repository = ReadingRepository(conn)
            await self._visible(caller, repository, selection, layer)
            return await repository.aggregate(selection, layer=layer, width=width, origin=ORIGIN)

    @classmethod
    async def _visible(
        cls, caller: Caller, repository: ReadingRepository, selection: Selection, layer: str
    ) -> tuple[str, ...]:
        """The reading fields the caller sees in `layer`; raises the not-found error of what
        they may not read, or RawValuesHidden."""
        sees_raw = await cls._sees_raw(caller, repository, selection)
        return visible_fields(layer, sees_raw=sees_raw)

    @staticmethod
    async def _sees_raw(
        caller: Caller, repository: ReadingRepository, selection: Selection
    ) -> bool:
        """Whether the caller sees the selection's raw values; raises the not-found error of
        what they may not read."""
        # What was asked for, the projects that may let the caller read it, and the error if
        # none does.
        asked: list[tuple[Sequence[uuid.UUID | None], Exception]] = []
        if selection.sensor_ids:
            projects = await repository.sensor_projects(list(selection.sensor_ids))
            asked += [
                (projects.get(sensor_id, []), SensorNotFound(f"No such sensor: {sensor_id}."))
                for sensor_id in selection.sensor_ids
            ]
        if selection.run_id is not None:
            asked.append(([await repository.run_project(selection.run_id)], RunNotFound()))
        if selection.capture_session_id is not None:
            project = await repository.session_project(selection.capture_session_id)
            asked.append(([project], CaptureSessionNotFound()))
        sees_raw = True
        for project_ids, not_found in asked:
            access = await _access(caller, project_ids)
            if access is None:
                raise not_found
            sees_raw = sees_raw and access
        return sees_raw


async def _channels_to_align(
    repository: ReadingRepository, sensor_id: uuid.UUID, asked: Sequence[str]
) -> dict[str, bool]:
    """The channels of a sensor to align, each with whether its series is shown even when it
    has no value on the grid: those asked for (`signal=`, in that order), else, in name order,
    those the sensor declares (shown) and those it sent readings on (shown when they have
    values)."""
    if asked:
        return dict.fromkeys(asked, True)
    sent, declared = await repository.channels(sensor_id)
    return {name: name in declared for name in sorted({*sent, *declared})}


def _series(
    rows: list[Any], points: list[datetime], step: timedelta, fill: Fill
) -> tuple[list[float | None], dict[str, Any] | None, int]:
    """A sensor's values on the grid, its receive lag, and how many of its rows were inside
    the grid's window (not the one just before or after it)."""
    values, lag = aligned_series(rows, points, step, fill)
    return values, lag, sum(1 for row in rows if row["inside"])


def _earlier(point: datetime, step: timedelta) -> datetime:
    """point - step, or the earliest instant there is."""
    try:
        return point - step
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


async def _access(caller: Caller, project_ids: Sequence[uuid.UUID | None]) -> bool | None:
    """None when the caller is a member of none of the projects; else whether one of those they
    are in shows them raw values."""
    access = None
    for project_id in project_ids:
        membership = await caller.membership(project_id) if project_id else None
        if membership is not None:
            if membership.sees_raw:
                return True
            access = False
    return access
