"""SQL of the read side: stored readings by sensor, run or capture session, and per-bucket
aggregates (computed with date_bin over the plain table)."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any

import asyncpg
from pydantic import Field

from backend_common.instants import Instant
from backend_common.pagination import CursorKey, Page, PageRequest
from backend_common.sql import Query
from telemetry_ingest_service.domain.live import Filter

# A reading as the API shows it, plus its position (batch_id, seq) for keyset paging. Ids come
# as text: JSON encoding takes them as they are (the driver's UUID type needs a call each).
_READING_COLUMNS = """
    "timestamp", received_at, sensor_id::text AS sensor_id, raw_value, physical_value, signal,
    conversion_status, late, run_id::text AS run_id,
    capture_session_id::text AS capture_session_id, meta, batch_id, seq
"""
_SENSOR_PROJECTS = """
    SELECT s.id,
           ARRAY(SELECT project_id FROM telemetry_seam.sensor_projects WHERE sensor_id = s.id)
               AS projects
    FROM telemetry_seam.sensors s WHERE s.id = ANY($1::uuid[])
"""
_RUN_PROJECT = "SELECT project_id FROM telemetry_seam.runs WHERE id = $1"
_BATCH_READINGS = """
    SELECT "timestamp", received_at, sensor_id, raw_value, physical_value, signal,
           conversion_status, late, run_id, capture_session_id, meta
    FROM telemetry_records WHERE batch_id = $1 ORDER BY seq
"""
_LATEST_BATCH = "SELECT coalesce(max(id), 0) FROM telemetry_batches"
# The channels a sensor ever sent readings on (a skip scan of the (sensor, signal, time)
# index: one probe per channel) and those it declares.
_CHANNELS = """
    WITH RECURSIVE sent(signal) AS (
        (SELECT signal FROM telemetry_records WHERE sensor_id = $1 ORDER BY signal LIMIT 1)
        UNION ALL
        SELECT (SELECT r.signal FROM telemetry_records r
                WHERE r.sensor_id = $1 AND r.signal > sent.signal ORDER BY r.signal LIMIT 1)
        FROM sent WHERE sent.signal IS NOT NULL
    )
    SELECT ARRAY(SELECT signal FROM sent WHERE signal IS NOT NULL) AS sent,
           coalesce((SELECT channels FROM telemetry_seam.sensor_channels WHERE sensor_id = $1),
                    '{}') AS declared
"""
_SESSION_SPAN = "SELECT started_at, stopped_at FROM telemetry_seam.capture_sessions WHERE id = $1"
_SESSION_PROJECT = "SELECT project_id FROM telemetry_seam.capture_sessions WHERE id = $1"
# Per sensor, channel and bucket: each reading weighs the time until the next one in its bucket
# (the last one until the bucket's end), which gives the time-weighted average. Readings at one
# instant are ordered as the history orders them (batch, then position). One window does the
# ordered work. Sums are taken of the values times {scale}: 1, or for values so large that their
# sums overflow, a power of two that brings them down without rounding them.
_AGGREGATE = """
    WITH binned AS (
        SELECT sensor_id, signal, "timestamp", batch_id, seq, {value} AS v,
               date_bin({width}, "timestamp", {origin}) AS bucket_start
        FROM telemetry_records
        WHERE {where} AND {value} IS NOT NULL
    ), weighted AS (
        SELECT sensor_id, signal, bucket_start, v, v * {scale} AS scaled,
               date_part('epoch', least(lead("timestamp") OVER bucket,
                                        bucket_start + {width}) - "timestamp") AS w,
               first_value(v) OVER bucket AS first,
               last_value(v) OVER bucket AS last
        FROM binned
        WINDOW bucket AS (
            PARTITION BY sensor_id, signal, bucket_start ORDER BY "timestamp", batch_id, seq
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        )
    )
    SELECT sensor_id, signal, bucket_start, count(*) AS count, min(v) AS min, max(v) AS max,
           avg(scaled) / {scale} AS avg,
           coalesce(sum(scaled * w) / nullif(sum(w), 0), avg(scaled)) / {scale} AS twa,
           min(first) AS first, min(last) AS last
    FROM weighted
    GROUP BY sensor_id, signal, bucket_start
    ORDER BY sensor_id, signal, bucket_start
"""
_HUGE_VALUES_SCALE = "power(2::float8, -600)"
# A day of one sensor (86,400 readings) sorts in memory, and faster in one process than in
# parallel workers that each spill and then merge.
_AGGREGATE_SETTINGS = """
    SET LOCAL work_mem = '64MB'; SET LOCAL max_parallel_workers_per_gather = 0;
    SAVEPOINT before_aggregate
"""
_BEFORE_AGGREGATE_ROLLBACK = "ROLLBACK TO SAVEPOINT before_aggregate"
LAYER_COLUMNS = {"raw": "raw_value", "physical": "physical_value"}
BIGINT_MAX = 2**63 - 1
INTEGER_MAX = 2**31 - 1


class ReadingKey(CursorKey):
    """Where a history page ends: (timestamp, batch, seq) of its last reading. Bounded as the
    columns are (an instant PostgreSQL holds, a bigint, an integer), so a forged cursor is
    refused here rather than by the driver."""

    t: Instant
    b: Annotated[int, Field(strict=True, ge=0, le=BIGINT_MAX)]
    s: Annotated[int, Field(strict=True, ge=0, le=INTEGER_MAX)]


@dataclass(frozen=True)
class Selection:
    """Which readings: of these sensors (any, if empty), on these channels (any, if empty), of
    a run and/or capture session, in [start, end)."""

    sensor_ids: tuple[uuid.UUID, ...] = ()
    signals: tuple[str, ...] = ()
    run_id: uuid.UUID | None = None
    capture_session_id: uuid.UUID | None = None
    start: datetime | None = None
    end: datetime | None = None
    end_inclusive: bool = False

    def where(self, query: Query) -> str:
        conditions = []
        if len(self.sensor_ids) == 1:  # an equality the planner can scan the index in order by
            conditions.append(f"sensor_id = {query.param(self.sensor_ids[0])}")
        elif self.sensor_ids:
            conditions.append(f"sensor_id = ANY({query.param(list(self.sensor_ids))}::uuid[])")
        if len(self.signals) == 1:
            conditions.append(f"signal = {query.param(self.signals[0])}")
        elif self.signals:
            conditions.append(f"signal = ANY({query.param(list(self.signals))}::text[])")
        if self.run_id is not None:
            conditions.append(f"run_id = {query.param(self.run_id)}")
        if self.capture_session_id is not None:
            conditions.append(f"capture_session_id = {query.param(self.capture_session_id)}")
        if self.start is not None:
            conditions.append(f'"timestamp" >= {query.param(self.start)}')
        if self.end is not None:
            comparison = "<=" if self.end_inclusive else "<"
            conditions.append(f'"timestamp" {comparison} {query.param(self.end)}')
        return " AND ".join(conditions) or "true"


class ReadingRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def sensor_projects(
        self, sensor_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        rows = await self._conn.fetch(_SENSOR_PROJECTS, sensor_ids)
        return {row["id"]: row["projects"] for row in rows}

    async def run_project(self, run_id: uuid.UUID) -> uuid.UUID | None:
        project_id: uuid.UUID | None = await self._conn.fetchval(_RUN_PROJECT, run_id)
        return project_id

    async def session_project(self, session_id: uuid.UUID) -> uuid.UUID | None:
        project_id: uuid.UUID | None = await self._conn.fetchval(_SESSION_PROJECT, session_id)
        return project_id

    async def batch_items(self, batch_id: int) -> list[dict[str, Any]]:
        """One stored batch's readings as the API shows them (ids as text)."""
        rows = await self._conn.fetch(_BATCH_READINGS, batch_id)
        return [
            {
                **dict(row),
                "sensor_id": str(row["sensor_id"]),
                "run_id": _text(row["run_id"]),
                "capture_session_id": _text(row["capture_session_id"]),
            }
            for row in rows
        ]

    async def batches_after(self, flt: Filter, after: int, *, limit: int) -> list[int]:
        """Ids of the stored batches after `after` that the stream filter wants, oldest first
        (at most `limit`, the newest ones)."""
        sensor_ids, run_id, capture_session_id = flt.sensor_ids, flt.run_id, flt.capture_session_id
        query = Query()
        conditions = [f"id > {query.param(after)}"]
        if sensor_ids:
            conditions.append(f"sensor_id = ANY({query.param(list(sensor_ids))}::uuid[])")
        if run_id is not None:
            conditions.append(f"run_id = {query.param(run_id)}")
        if capture_session_id is not None:
            conditions.append(f"capture_session_id = {query.param(capture_session_id)}")
        sql = (
            f"SELECT id FROM (SELECT id FROM telemetry_batches WHERE {' AND '.join(conditions)}"
            f" ORDER BY id DESC LIMIT {query.param(limit)}) newest ORDER BY id"
        )
        return [row["id"] for row in await self._conn.fetch(sql, *query.params)]

    async def channels(self, sensor_id: uuid.UUID) -> tuple[list[str], list[str]]:
        """The channels the sensor sent readings on, and those it declares."""
        row = await self._conn.fetchrow(_CHANNELS, sensor_id)
        return list(row["sent"]), list(row["declared"])

    async def session_span(self, session_id: uuid.UUID) -> tuple[datetime | None, datetime | None]:
        row = await self._conn.fetchrow(_SESSION_SPAN, session_id)
        return (row["started_at"], row["stopped_at"]) if row else (None, None)

    async def around(self, selection: Selection, *, layer: str, limit: int) -> list[asyncpg.Record]:
        """One sensor's readings with a value in [start, end] (at most `limit`), and its last
        one before and first one after, by time: (timestamp, value, received_at, inside), where
        `inside` tells the readings of [start, end] from the two around them."""
        value = LAYER_COLUMNS[layer]
        query = Query()
        inside = selection.where(query)
        outside = replace(selection, start=None, end=None).where(query)
        start, end = query.param(selection.start), query.param(selection.end)
        columns = f'"timestamp", {value} AS value, received_at'
        order = '"timestamp", batch_id, seq'
        sql = f"""
            (SELECT {columns}, false AS inside FROM telemetry_records
             WHERE {outside} AND "timestamp" < {start} AND {value} IS NOT NULL
             ORDER BY "timestamp" DESC, batch_id DESC, seq DESC LIMIT 1)
            UNION ALL
            (SELECT {columns}, true AS inside FROM telemetry_records
             WHERE {inside} AND {value} IS NOT NULL ORDER BY {order}
             LIMIT {query.param(limit)})
            UNION ALL
            (SELECT {columns}, false AS inside FROM telemetry_records
             WHERE {outside} AND "timestamp" > {end} AND {value} IS NOT NULL
             ORDER BY {order} LIMIT 1)
        """
        rows: list[asyncpg.Record] = await self._conn.fetch(sql, *query.params)
        return rows

    async def latest_batch(self) -> int:
        batch_id: int = await self._conn.fetchval(_LATEST_BATCH)
        return batch_id

    async def page(self, selection: Selection, page: PageRequest) -> Page[asyncpg.Record]:
        """Readings in (timestamp, batch, seq) order, after the cursor's reading.

        Per sensor, an ordered scan of the (sensor_id, timestamp) index that stops at the
        page's end; several sensors are merged (a plain `sensor_id = ANY(…)` would sort all of
        them).
        """
        query = Query()
        after_sql = ""
        after = page.after(ReadingKey)
        if after is not None:
            ts, batch, seq = query.param(after.t), query.param(after.b), query.param(after.s)
            after_sql = f' AND ("timestamp", batch_id, seq) > ({ts}::timestamptz, {batch}, {seq})'
        order = 'ORDER BY "timestamp", batch_id, seq'
        limit_sql = f"LIMIT {query.param(page.fetch)}"
        if len(selection.sensor_ids) <= 1:
            where = selection.where(query) + after_sql
            sql = f"SELECT {_READING_COLUMNS} FROM telemetry_records WHERE {where} {order}"
            sql += f" {limit_sql}"
        else:
            parts = []
            for sensor_id in selection.sensor_ids:
                one = replace(selection, sensor_ids=(sensor_id,))
                where = one.where(query) + after_sql
                parts.append(
                    f"(SELECT {_READING_COLUMNS} FROM telemetry_records WHERE {where}"
                    f" {order} {limit_sql})"
                )
            sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) merged {order} {limit_sql}"
        rows = await self._conn.fetch(sql, *query.params)
        return page.page(
            rows, key=lambda row: ReadingKey(t=row["timestamp"], b=row["batch_id"], s=row["seq"])
        )

    async def stream(self, selection: Selection, *, limit: int) -> AsyncIterator[asyncpg.Record]:
        """The first `limit` selected readings in time order, through a cursor (needs a
        transaction)."""
        query = Query()
        where = selection.where(query)
        sql = (
            f"SELECT {_READING_COLUMNS} FROM telemetry_records WHERE {where}"
            f' ORDER BY "timestamp", batch_id, seq LIMIT {query.param(limit)}'
        )
        async for row in self._conn.cursor(sql, *query.params, prefetch=2000):
            yield row

    async def more_than(self, selection: Selection, count: int) -> bool:
        """Whether more than `count` readings are selected (reads at most count + 1)."""
        query = Query()
        where = selection.where(query)
        sql = (
            f"SELECT count(*) > {query.param(count)} FROM (SELECT 1 FROM telemetry_records"
            f" WHERE {where} LIMIT {query.param(count + 1)}) selected"
        )
        more: bool = await self._conn.fetchval(sql, *query.params)
        return more

    async def aggregate(
        self, selection: Selection, *, layer: str, width: timedelta, origin: datetime
    ) -> list[dict[str, Any]]:
        """Per sensor, channel and bucket, from the readings. Needs the caller's transaction: its
        settings are SET LOCAL, and values whose sums overflow are summed again, scaled, after
        a rollback to a savepoint."""
        query = Query()
        parts = {
            "value": LAYER_COLUMNS[layer],
            "where": selection.where(query),
            "width": f"{query.param(width)}::interval",
            "origin": f"{query.param(origin)}::timestamptz",
        }
        await self._conn.execute(_AGGREGATE_SETTINGS)
        try:
            rows = await self._conn.fetch(_AGGREGATE.format(scale="1", **parts), *query.params)
        except asyncpg.NumericValueOutOfRangeError:
            await self._conn.execute(_BEFORE_AGGREGATE_ROLLBACK)
            sql = _AGGREGATE.format(scale=_HUGE_VALUES_SCALE, **parts)
            rows = await self._conn.fetch(sql, *query.params)
        return [dict(row) for row in rows]


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None
