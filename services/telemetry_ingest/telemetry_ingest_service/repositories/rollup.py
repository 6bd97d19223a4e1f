"""SQL of the per-minute rollup (migration 0005): refreshing queued minutes, and aggregates of
1-minute and coarser buckets combined from it.

Readings are taken in windows: `windows(sensor_id, start_at, end_at)`, disjoint per sensor,
passed as three arrays. A window with no sensor covers every sensor (refresh only).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from telemetry_ingest_service.repositories.readings import LAYER_COLUMNS

_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('telemetry_rollup_refresh'))"
_TAKE_DUE = """
    DELETE FROM telemetry_rollup_pending WHERE id IN (
        SELECT id FROM telemetry_rollup_pending WHERE last_minute <= $1 ORDER BY id LIMIT $2
    )
    RETURNING sensor_id, first_minute, last_minute
"""
_PENDING_FOR = """
    SELECT sensor_id, first_minute, last_minute FROM telemetry_rollup_pending
    WHERE (sensor_id = ANY($1::uuid[]) OR sensor_id IS NULL)
      AND last_minute >= $2 AND first_minute < $3
"""
_WINDOWS = """
    windows AS (
        SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[])
            AS w(sensor_id, start_at, end_at)
    )
"""
# Per sensor and minute, from the readings in the windows: the minute's partials. Each reading
# weighs the time until the next one in its minute (the last one until the minute's end), the
# order being the history's. Means are sums of value times share, which cannot overflow.
_PARTIALS = """
    SELECT sensor_id, minute, count(*)::integer AS count, min(v) AS min, max(v) AS max,
           sum(v / n) AS avg, sum(v * (w / weight)) AS twa,
           min(first) AS first, min(last) AS last, min(first_at) AS first_at
    FROM (
        SELECT sensor_id, minute, v,
               (count(*) OVER m)::float8 AS n,
               first_value(v) OVER m AS first,
               last_value(v) OVER m AS last,
               first_value("timestamp") OVER m AS first_at,
               date_part('epoch', coalesce(lead("timestamp") OVER m, minute + interval '1 minute')
                                  - "timestamp") AS w,
               date_part('epoch', minute + interval '1 minute'
                                  - first_value("timestamp") OVER m) AS weight
        FROM (
            SELECT r.sensor_id, r."timestamp", r.batch_id, r.seq, r.{value} AS v,
                   telemetry_minute(r."timestamp") AS minute
            FROM windows w JOIN telemetry_records r
              ON {match} AND r."timestamp" >= w.start_at AND r."timestamp" < w.end_at
            WHERE r.{value} IS NOT NULL
        ) readings
        WINDOW m AS (
            PARTITION BY sensor_id, minute ORDER BY "timestamp", batch_id, seq
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        )
    ) weighted
    GROUP BY sensor_id, minute
"""
_COLUMNS = "sensor_id, minute, count, min, max, avg, twa, first, last, first_at"
_CLEAR = f"""
    WITH {_WINDOWS}
    DELETE FROM telemetry_rollup r USING windows w
    WHERE {{match}} AND r.minute >= w.start_at AND r.minute < w.end_at
"""
_FILL = f"""
    WITH {_WINDOWS}
    INSERT INTO telemetry_rollup (layer, {_COLUMNS})
    SELECT 'raw', * FROM ({_PARTIALS.replace("{value}", "raw_value")}) raw
    UNION ALL
    SELECT 'physical', * FROM ({_PARTIALS.replace("{value}", "physical_value")}) physical
"""
# Buckets of a width that is a whole number of minutes, from stored minutes outside the windows
# and minutes computed from the readings inside them. Within a bucket, the last reading of a
# minute weighs on until the next minute's first reading (or the bucket's end): `gap`.
_AGGREGATE = f"""
    WITH {_WINDOWS}, minutes AS (
        SELECT {_COLUMNS} FROM telemetry_rollup r
        WHERE r.sensor_id = ANY($4::uuid[]) AND r.layer = $5 AND r.minute >= $6 AND r.minute < $7
          AND NOT EXISTS (
              SELECT 1 FROM windows w
              WHERE w.sensor_id = r.sensor_id AND r.minute >= w.start_at AND r.minute < w.end_at
          )
        UNION ALL
        {_PARTIALS.replace("{match}", "r.sensor_id = w.sensor_id")}
    ), placed AS (
        SELECT *, date_bin($8::interval, minute, $9::timestamptz) AS bucket_start FROM minutes
    ), gapped AS (
        SELECT sensor_id, bucket_start, minute, count, min, max, avg, twa, first, last,
               date_part('epoch', minute + interval '1 minute' - first_at) AS weight,
               count / (sum(count) OVER b)::float8 AS share,
               date_part('epoch', coalesce(lead(first_at) OVER b, bucket_start + $8::interval)
                                  - (minute + interval '1 minute')) AS gap,
               date_part('epoch', bucket_start + $8::interval - first_value(first_at) OVER b)
                   AS span
        FROM placed
        WINDOW b AS (
            PARTITION BY sensor_id, bucket_start ORDER BY minute
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        )
    )
    SELECT sensor_id, bucket_start, sum(count) AS count, min(min) AS min, max(max) AS max,
           sum(avg * share) AS avg, sum(twa * (weight / span) + last * (gap / span)) AS twa,
           (array_agg(first ORDER BY minute))[1] AS first,
           (array_agg(last ORDER BY minute DESC))[1] AS last
    FROM gapped
    GROUP BY sensor_id, bucket_start
    ORDER BY sensor_id, bucket_start
"""


@dataclass(frozen=True)
class Window:
    """Readings of one sensor (of every sensor: None) in [start, end)."""

    sensor_id: uuid.UUID | None
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Pending:
    """Queued minutes [first_minute, last_minute] of one sensor (of every sensor: None)."""

    sensor_id: uuid.UUID | None
    first_minute: datetime
    last_minute: datetime


def _arrays(windows: Sequence[Window]) -> tuple[list[Any], list[datetime], list[datetime]]:
    return (
        [w.sensor_id for w in windows],
        [w.start for w in windows],
        [w.end for w in windows],
    )


class RollupRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock(self) -> bool:
        """The refresher's lock for this transaction, if no other refresher holds it."""
        locked: bool = await self._conn.fetchval(_LOCK)
        return locked

    async def take_due(self, due: datetime, limit: int) -> list[Pending]:
        """Removes (and gives) at most `limit` queued ranges that end by the minute `due`."""
        rows = await self._conn.fetch(_TAKE_DUE, due, limit)
        return [Pending(row["sensor_id"], row["first_minute"], row["last_minute"]) for row in rows]

    async def pending(
        self, sensor_ids: Sequence[uuid.UUID], start: datetime, end: datetime
    ) -> list[Pending]:
        """The queued ranges of these sensors (or of every sensor) that touch [start, end)."""
        rows = await self._conn.fetch(_PENDING_FOR, list(sensor_ids), start, end)
        return [Pending(row["sensor_id"], row["first_minute"], row["last_minute"]) for row in rows]

    async def recompute(self, windows: Sequence[Window]) -> None:
        """The rollup of the minutes in the windows, computed again from the readings."""
        for every_sensor in (False, True):
            chosen = [w for w in windows if (w.sensor_id is None) == every_sensor]
            if not chosen:
                continue
            match = "true" if every_sensor else "r.sensor_id = w.sensor_id"
            arrays = _arrays(chosen)
            await self._conn.execute(_CLEAR.format(match=match), *arrays)
            await self._conn.execute(_FILL.format(match=match), *arrays)

    async def aggregate(
        self,
        *,
        sensor_ids: Sequence[uuid.UUID],
        layer: str,
        stored: tuple[datetime, datetime],
        windows: Sequence[Window],
        width: timedelta,
        origin: datetime,
    ) -> list[dict[str, Any]]:
        """Per sensor and bucket: stored minutes in [stored) outside the windows, readings in
        the windows."""
        sql = _AGGREGATE.replace("{value}", LAYER_COLUMNS[layer])
        rows = await self._conn.fetch(
            sql, *_arrays(windows), list(sensor_ids), layer, *stored, width, origin
        )
        return [dict(row) for row in rows]
