"""SQL of the conversion backfill job: a backfill's next chunk of readings, the profiles valid
over it, the readings rewritten, the touched minutes queued for the rollup, and the progress
(`telemetry_seam.conversion_backfills`, recorded by the experiment service)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from telemetry_ingest_service.domain.conversion import Converted

_RUNNING = """
    SELECT id FROM telemetry_seam.conversion_backfills ORDER BY id LIMIT $1
"""
# Locks the backfill: two jobs (an expired lease) never convert the same chunk at once.
_LOCK = """
    SELECT id, sensor_id, range_from, range_to, cursor_timestamp, cursor_batch_id, cursor_seq
    FROM telemetry_seam.conversion_backfills WHERE id = $1
    FOR UPDATE
"""
# Keyset by ("timestamp", batch_id, seq) on (sensor_id, "timestamp"): the first chunk has no
# cursor (-infinity stands for it).
_CHUNK = """
    SELECT "timestamp", batch_id, seq, raw_value FROM telemetry_records
    WHERE sensor_id = $1
      AND "timestamp" >= $2 AND ($3::timestamptz IS NULL OR "timestamp" < $3)
      AND ("timestamp", batch_id, seq) > ($4, $5, $6)
    ORDER BY "timestamp", batch_id, seq
    LIMIT $7
"""
_PROFILES = """
    SELECT id, kind, payload, valid_from, valid_to FROM telemetry_seam.conversion_profiles
    WHERE sensor_id = $1 AND valid_from <= $3 AND (valid_to IS NULL OR valid_to > $2)
    ORDER BY valid_from
"""
_UPDATE = """
    UPDATE telemetry_records r
    SET physical_value = v.physical, conversion_status = v.status, profile_id = v.profile_id
    FROM unnest($2::timestamptz[], $3::bigint[], $4::integer[], $5::float8[], $6::text[],
                $7::uuid[]) AS v("timestamp", batch_id, seq, physical, status, profile_id)
    WHERE r.sensor_id = $1 AND r."timestamp" BETWEEN $8 AND $9
      AND r."timestamp" = v."timestamp" AND r.batch_id = v.batch_id AND r.seq = v.seq
"""
_QUEUE_MINUTES = """
    INSERT INTO telemetry_rollup_pending (sensor_id, first_minute, last_minute)
    VALUES ($1, telemetry_minute($2), telemetry_minute($3))
"""
_PROGRESS = "SELECT telemetry_seam.conversion_backfill_progress($1, $2, $3, $4, $5, $6, $7)"


@dataclass(frozen=True)
class BackfillCursor:
    id: uuid.UUID
    sensor_id: uuid.UUID
    range_from: datetime
    range_to: datetime | None
    after: tuple[datetime | None, int | None, int | None]


@dataclass(frozen=True)
class Chunk:
    timestamps: list[datetime]
    batch_ids: list[int]
    seqs: list[int]
    raw_values: list[float]

    def __len__(self) -> int:
        return len(self.timestamps)


class BackfillRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def running(self, limit: int) -> list[uuid.UUID]:
        rows = await self._conn.fetch(_RUNNING, limit)
        return [row["id"] for row in rows]

    async def lock(self, backfill_id: uuid.UUID) -> BackfillCursor | None:
        """The backfill, row-locked, while it runs; None once finished."""
        row = await self._conn.fetchrow(_LOCK, backfill_id)
        if row is None:
            return None
        return BackfillCursor(
            row["id"],
            row["sensor_id"],
            row["range_from"],
            row["range_to"],
            (row["cursor_timestamp"], row["cursor_batch_id"], row["cursor_seq"]),
        )

    async def chunk(self, backfill: BackfillCursor, limit: int) -> Chunk:
        after_at, after_batch, after_seq = backfill.after
        if after_at is None:  # nothing done yet: from the range's start
            after_at, after_batch, after_seq = backfill.range_from, -1, -1
        rows = await self._conn.fetch(
            _CHUNK,
            backfill.sensor_id,
            backfill.range_from,
            backfill.range_to,
            after_at,
            after_batch,
            after_seq,
            limit,
        )
        return Chunk(
            [row["timestamp"] for row in rows],
            [row["batch_id"] for row in rows],
            [row["seq"] for row in rows],
            [row["raw_value"] for row in rows],
        )

    async def profiles(
        self, sensor_id: uuid.UUID, first: datetime, last: datetime
    ) -> list[tuple[uuid.UUID, str, Any, datetime, datetime | None]]:
        """The profiles whose validity meets [first, last], by start."""
        rows = await self._conn.fetch(_PROFILES, sensor_id, first, last)
        return [
            (row["id"], row["kind"], row["payload"], row["valid_from"], row["valid_to"])
            for row in rows
        ]

    async def rewrite(self, sensor_id: uuid.UUID, chunk: Chunk, converted: Converted) -> None:
        await self._conn.execute(
            _UPDATE,
            sensor_id,
            chunk.timestamps,
            chunk.batch_ids,
            chunk.seqs,
            converted.physical,
            converted.status,
            converted.profile_ids,
            chunk.timestamps[0],
            chunk.timestamps[-1],
        )
        await self._conn.execute(
            _QUEUE_MINUTES, sensor_id, chunk.timestamps[0], chunk.timestamps[-1]
        )

    async def progress(
        self, backfill_id: uuid.UUID, chunk: Chunk, *, at: datetime, finished: bool
    ) -> None:
        last = len(chunk) - 1
        await self._conn.execute(
            _PROGRESS,
            backfill_id,
            chunk.timestamps[last] if chunk else None,
            chunk.batch_ids[last] if chunk else None,
            chunk.seqs[last] if chunk else None,
            len(chunk),
            at,
            finished,
        )
