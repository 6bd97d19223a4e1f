"""SQL of the per-minute rollup (migrations 0005, 0015): refreshing queued minutes, and
aggregates of 1-minute and coarser buckets combined from it, per sensor and channel.

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
# A busy minute's readings (a 10 kHz sensor's 600,000) sort in memory; one refresher works at a
# time, so this is the memory of one sort.
_REFRESH_SETTINGS = "SET LOCAL work_mem = '64MB'"
# The queue's newest entry: a refresh pass takes what was queued before it started.
_HIGH_WATER = "SELECT coalesce(max(id), 0) FROM telemetry_rollup_pending"
# Every due entry (up to the pass's high-water id) of at most $3 sensors, those of every sensor
# (NULL) first: all the batches that queued a sensor's minutes are taken together.
_TAKE_DUE = """
    WITH chosen AS (
        SELECT DISTINCT sensor_id FROM telemetry_rollup_pending
        WHERE last_minute <= $1 AND id <= $2
        ORDER BY sensor_id NULLS FIRST LIMIT $3
    )
    DELETE FROM telemetry_rollup_pending p USING chosen c
    WHERE p.sensor_id IS NOT DISTINCT FROM c.sensor_id AND p.last_minute <= $1 AND p.id <= $2
    RETURNING p.sensor_id, p.first_minute, p.last_minute
"""
_QUEUE = """
    WITH queued AS (
        INSERT INTO telemetry_rollup_pending (sensor_id, first_minute, last_minute)
        SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[])
        RETURNING id
    )
    SELECT coalesce(max(id), 0) FROM queued
"""
# The queue's length, and the end of the oldest queued range (whose rollup is owed longest).
_BACKLOG = """
    SELECT count(*) AS ranges, min(last_minute) + interval '1 minute' AS oldest_end
    FROM telemetry_rollup_pending
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
# Per sensor, channel and minute, from the readings in the windows: the minute's partials. Each
# reading weighs the time until the next one in its minute (the last one until the minute's
# end), the order being the history's. Means are sums of value times share (a time share being
# its seconds over 60, then scaled to the minute's weighed span), which cannot overflow. The
# ordered window looks only one row ahead (lead) and counts (row_number): a busy minute's
# readings, spilled to disk, are read once, never searched back and forth row by row.
_PARTIALS = """
    SELECT sensor_id, signal, minute, count(*)::integer AS count, min(v) AS min, max(v) AS max,
           sum(v / n) AS avg,
           sum(v * (w / 60)) / (date_part('epoch', minute + interval '1 minute'
                                                   - min("timestamp")) / 60) AS twa,
           min(v) FILTER (WHERE position = 1) AS first,
           min(v) FILTER (WHERE next_at IS NULL) AS last,
           min("timestamp") AS first_at
    FROM (
        SELECT sensor_id, signal, minute, v, "timestamp", n, position, next_at,
               date_part('epoch', coalesce(next_at, minute + interval '1 minute')
                                  - "timestamp") AS w
        FROM (
            SELECT sensor_id, signal, minute, v, "timestamp",
                   (count(*) OVER minute)::float8 AS n,
                   row_number() OVER ordered AS position,
                   lead("timestamp") OVER ordered AS next_at
            FROM (
                SELECT r.sensor_id, r.signal, r."timestamp", r.batch_id, r.seq, r.{value} AS v,
                       telemetry_minute(r."timestamp") AS minute
                FROM windows w CROSS JOIN LATERAL (
                    -- A window at a time: a sensor's is an index range scan, however big the
                    -- table is (OFFSET 0 keeps the planner from joining it all at once).
                    SELECT * FROM telemetry_records r
                    WHERE {match} AND r."timestamp" >= w.start_at AND r."timestamp" < w.end_at
                    OFFSET 0
                ) r
                WHERE r.{value} IS NOT NULL AND {signals}
            ) readings
            WINDOW minute AS (PARTITION BY sensor_id, signal, minute),
                   ordered AS (minute ORDER BY "timestamp", batch_id, seq)
        ) placed
    ) weighted
    GROUP BY sensor_id, signal, minute
"""
_COLUMNS = "sensor_id, signal, minute, count, min, max, avg, twa, first, last, first_at"
# The channels an aggregate asks for ($10; empty: every channel).
_SIGNALS = "(cardinality($10::text[]) = 0 OR {table}.signal = ANY($10::text[]))"
_FILL_PARTIALS = _PARTIALS.replace("{signals}", "true")
_CLEAR = f"""
    WITH {_WINDOWS}
    DELETE FROM telemetry_rollup r USING windows w
    WHERE {{match}} AND r.minute >= w.start_at AND r.minute < w.end_at
"""
_FILL = f"""
    WITH {_WINDOWS}
    INSERT INTO telemetry_rollup (layer, {_COLUMNS})
    SELECT 'raw', * FROM ({_FILL_PARTIALS.replace("{value}", "raw_value")}) raw
    UNION ALL
    SELECT 'physical', * FROM ({_FILL_PARTIALS.replace("{value}", "physical_value")}) physical
"""
# Buckets of a width that is a whole number of minutes, per sensor and channel, from stored
# minutes outside the windows and minutes computed from the readings inside them. Within a
# bucket, the last reading of a minute weighs on until the next minute's first reading (or the
# bucket's end): `gap`.
_AGGREGATE = f"""
    WITH {_WINDOWS}, minutes AS (
        SELECT {_COLUMNS} FROM telemetry_rollup r
        WHERE r.sensor_id = ANY($4::uuid[]) AND r.layer = $5 AND r.minute >= $6 AND r.minute < $7
          AND {_SIGNALS.format(table="r")}
          AND NOT EXISTS (
              SELECT 1 FROM windows w
              WHERE w.sensor_id = r.sensor_id AND r.minute >= w.start_at AND r.minute < w.end_at
          )
        UNION ALL
        {
    _PARTIALS.replace("{match}", "r.sensor_id = w.sensor_id").replace(
        "{signals}", _SIGNALS.format(table="r")
    )
}
    ), placed AS (
        SELECT *, date_bin($8::interval, minute, $9::timestamptz) AS bucket_start FROM minutes
    ), gapped AS (
        SELECT sensor_id, signal, bucket_start, minute, count, min, max, avg, twa, first, last,
               date_part('epoch', minute + interval '1 minute' - first_at) AS weight,
               count / (sum(count) OVER b)::float8 AS share,
               date_part('epoch', coalesce(lead(first_at) OVER b, bucket_start + $8::interval)
                                  - (minute + interval '1 minute')) AS gap,
               date_part('epoch', bucket_start + $8::interval - first_value(first_at) OVER b)
                   AS span
        FROM placed
        WINDOW b AS (
            PARTITION BY sensor_id, signal, bucket_start ORDER BY minute
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        )
    )
    SELECT sensor_id, signal, bucket_start, sum(count) AS count, min(min) AS min,
           max(max) AS max,
           sum(avg * share) AS avg, sum(twa * (weight / span) + last * (gap / span)) AS twa,
           (array_agg(first ORDER BY minute))[1] AS first,
           (array_agg(last ORDER BY minute DESC))[1] AS last
    FROM gapped
    GROUP BY sensor_id, signal, bucket_start
    ORDER BY sensor_id, signal, bucket_start
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
        if locked:
            await self._conn.execute(_REFRESH_SETTINGS)
        return locked

    async def backlog(self) -> tuple[int, datetime | None]:
        """Queued ranges, and the end of the oldest one (None when none is queued)."""
        row = await self._conn.fetchrow(_BACKLOG)
        assert row is not None
        ranges: int = row["ranges"]
        oldest_end: datetime | None = row["oldest_end"]
        return ranges, oldest_end

    async def high_water(self) -> int:
        """The id of the newest queued entry (0 when none is)."""
        newest: int = await self._conn.fetchval(_HIGH_WATER)
        return newest

    async def take_due(self, due: datetime, up_to: int, sensors: int) -> list[Pending]:
        """Removes (and gives) the queued ranges with ids up to `up_to` that end by the minute
        `due`, every one of at most `sensors` sensors."""
        rows = await self._conn.fetch(_TAKE_DUE, due, up_to, sensors)
        return [Pending(row["sensor_id"], row["first_minute"], row["last_minute"]) for row in rows]

    async def queue(self, ranges: Sequence[Pending]) -> int:
        """Queues the ranges (again); the id of the last one (0 when there are none)."""
        newest: int = await self._conn.fetchval(
            _QUEUE,
            [r.sensor_id for r in ranges],
            [r.first_minute for r in ranges],
            [r.last_minute for r in ranges],
        )
        return newest

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

    async def fill_missing(self, windows: Sequence[Window]) -> None:
        """The rollup of the minutes in the windows that have none yet (others stay)."""
        chosen = [w for w in windows if w.sensor_id is not None]
        if chosen:
            sql = _FILL.format(match="r.sensor_id = w.sensor_id") + " ON CONFLICT DO NOTHING"
            await self._conn.execute(sql, *_arrays(chosen))

    async def aggregate(
        self,
        *,
        sensor_ids: Sequence[uuid.UUID],
        signals: Sequence[str],
        layer: str,
        stored: tuple[datetime, datetime],
        windows: Sequence[Window],
        width: timedelta,
        origin: datetime,
    ) -> list[dict[str, Any]]:
        """Per sensor, channel (of `signals`; every one if empty) and bucket: stored minutes
        in [stored) outside the windows, readings in the windows."""
        sql = _AGGREGATE.replace("{value}", LAYER_COLUMNS[layer])
        rows = await self._conn.fetch(
            sql, *_arrays(windows), list(sensor_ids), layer, *stored, width, origin, list(signals)
        )
        return [dict(row) for row in rows]
