"""SQL of the read side: stored readings by sensor, run or capture session, and per-bucket
aggregates (computed with date_bin over the plain table)."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from backend_common.sql import Query

# A reading as the API shows it, plus its position (batch_id, seq) for keyset paging.
_READING_COLUMNS = """
    "timestamp", received_at, sensor_id, raw_value, physical_value, signal, conversion_status,
    late, run_id, capture_session_id, meta, batch_id, seq
"""
_SENSOR_PROJECTS = """
    SELECT s.id, ARRAY(SELECT project_id FROM sensor_projects WHERE sensor_id = s.id) AS projects
    FROM sensors s WHERE s.id = ANY($1::uuid[])
"""
_RUN_PROJECT = "SELECT project_id FROM runs WHERE id = $1"
_SESSION_PROJECT = "SELECT project_id FROM capture_sessions WHERE id = $1"
# Per sensor and bucket: each reading weighs the time until the next one in its bucket (the last
# one until the bucket's end), which gives the time-weighted average. Readings at one instant
# are ordered as the history orders them (batch, then position). Sums run over values scaled by
# the bucket's largest magnitude, so values near the largest double do not overflow.
_AGGREGATE = """
    WITH binned AS (
        SELECT sensor_id, "timestamp", batch_id, seq, {value} AS v,
               date_bin({width}, "timestamp", {origin}) AS bucket_start
        FROM telemetry_records
        WHERE {where} AND {value} IS NOT NULL
    ), weighted AS (
        SELECT *,
               extract(epoch FROM least(lead("timestamp") OVER ordered, bucket_start + {width})
                                  - "timestamp") AS w,
               coalesce(nullif(max(abs(v)) OVER bucket, 0), 1) AS scale
        FROM binned
        WINDOW bucket AS (PARTITION BY sensor_id, bucket_start),
               ordered AS (bucket ORDER BY "timestamp", batch_id, seq)
    )
    SELECT sensor_id, bucket_start, count(*) AS count, min(v) AS min, max(v) AS max,
           avg(v / scale) * max(scale) AS avg,
           coalesce(sum(v / scale * w) / nullif(sum(w), 0), avg(v / scale)) * max(scale) AS twa,
           (array_agg(v ORDER BY "timestamp", batch_id, seq))[1] AS first,
           (array_agg(v ORDER BY "timestamp" DESC, batch_id DESC, seq DESC))[1] AS last
    FROM weighted
    GROUP BY sensor_id, bucket_start
    ORDER BY sensor_id, bucket_start
"""
LAYER_COLUMNS = {"raw": "raw_value", "physical": "physical_value"}


@dataclass(frozen=True)
class Selection:
    """Which readings: of these sensors (any, if empty), of a run and/or capture session, in
    [start, end)."""

    sensor_ids: tuple[uuid.UUID, ...] = ()
    run_id: uuid.UUID | None = None
    capture_session_id: uuid.UUID | None = None
    start: datetime | None = None
    end: datetime | None = None

    def where(self, query: Query) -> str:
        conditions = []
        if self.sensor_ids:
            conditions.append(f"sensor_id = ANY({query.param(list(self.sensor_ids))}::uuid[])")
        if self.run_id is not None:
            conditions.append(f"run_id = {query.param(self.run_id)}")
        if self.capture_session_id is not None:
            conditions.append(f"capture_session_id = {query.param(self.capture_session_id)}")
        if self.start is not None:
            conditions.append(f'"timestamp" >= {query.param(self.start)}')
        if self.end is not None:
            conditions.append(f'"timestamp" < {query.param(self.end)}')
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
        return await self._conn.fetchval(_RUN_PROJECT, run_id)

    async def session_project(self, session_id: uuid.UUID) -> uuid.UUID | None:
        return await self._conn.fetchval(_SESSION_PROJECT, session_id)

    async def page(
        self, selection: Selection, *, after: tuple[datetime, int, int] | None, limit: int
    ) -> list[asyncpg.Record]:
        """Readings in (timestamp, batch, seq) order, after the position `after`."""
        query = Query()
        where = selection.where(query)
        if after is not None:
            ts, batch, seq = (query.param(value) for value in after)
            where += f' AND ("timestamp", batch_id, seq) > ({ts}::timestamptz, {batch}, {seq})'
        sql = (
            f"SELECT {_READING_COLUMNS} FROM telemetry_records WHERE {where}"
            f' ORDER BY "timestamp", batch_id, seq LIMIT {query.param(limit)}'
        )
        return await self._conn.fetch(sql, *query.params)

    async def stream(self, selection: Selection) -> AsyncIterator[asyncpg.Record]:
        """Every selected reading in time order, through a cursor (needs a transaction)."""
        query = Query()
        where = selection.where(query)
        sql = (
            f"SELECT {_READING_COLUMNS} FROM telemetry_records WHERE {where}"
            ' ORDER BY "timestamp", batch_id, seq'
        )
        async for row in self._conn.cursor(sql, *query.params, prefetch=2000):
            yield row

    async def aggregate(
        self, selection: Selection, *, layer: str, width: timedelta, origin: datetime
    ) -> list[dict[str, Any]]:
        query = Query()
        where = selection.where(query)
        sql = _AGGREGATE.format(
            value=LAYER_COLUMNS[layer],
            where=where,
            width=f"{query.param(width)}::interval",
            origin=f"{query.param(origin)}::timestamptz",
        )
        return [dict(row) for row in await self._conn.fetch(sql, *query.params)]
