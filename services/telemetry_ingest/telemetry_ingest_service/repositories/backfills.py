"""SQL of the conversion backfill job: new backfills cut into slices, a slice claimed, its next
chunk of readings, the profiles valid over it, the readings rewritten, the touched minutes
queued for the rollup, and the progress (`telemetry_seam`: the experiment service records the
backfills and keeps their slices)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from telemetry_ingest_service.domain.conversion import Converted

_UNSLICED = """
    SELECT id, sensor_id, range_from, range_to, rows_total
    FROM telemetry_seam.unsliced_conversion_backfills ORDER BY id LIMIT $1
"""
# The first and last reading of a backfill's range.
_EXTENT = """
    SELECT min("timestamp") AS first, max("timestamp") AS last FROM telemetry_records
    WHERE sensor_id = $1
      AND "timestamp" >= $2 AND "timestamp" < coalesce($3::timestamptz, 'infinity')
"""
_SLICE = "SELECT telemetry_seam.slice_conversion_backfill($1, $2)"
# A slice left to convert that no other lane or process holds: locked for one chunk.
_CLAIM = """
    SELECT backfill_id, slice, sensor_id, range_from, range_to,
           cursor_timestamp, cursor_batch_id, cursor_seq
    FROM telemetry_seam.conversion_backfill_slices
    ORDER BY backfill_id, slice
    LIMIT 1
    FOR UPDATE SKIP LOCKED
"""
# Keyset by ("timestamp", batch_id, seq) on (sensor_id, "timestamp"): the first chunk has no
# cursor (the slice's start with (-1, -1) stands for it).
_CHUNK = """
    SELECT "timestamp", batch_id, seq, raw_value FROM telemetry_records
    WHERE sensor_id = $1
      AND "timestamp" >= $2 AND "timestamp" < coalesce($3::timestamptz, 'infinity')
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
_PROGRESS = """
    SELECT telemetry_seam.conversion_backfill_slice_progress($1, $2, $3, $4, $5, $6, $7, $8)
"""


@dataclass(frozen=True)
class Unsliced:
    id: uuid.UUID
    sensor_id: uuid.UUID
    range_from: datetime
    range_to: datetime | None
    rows_total: int


@dataclass(frozen=True)
class Slice:
    backfill_id: uuid.UUID
    number: int
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

    async def unsliced(self, limit: int) -> list[Unsliced]:
        rows = await self._conn.fetch(_UNSLICED, limit)
        return [Unsliced(*row) for row in rows]

    async def extent(self, backfill: Unsliced) -> tuple[datetime | None, datetime | None]:
        """The first and last reading of the backfill's range (None, None without any)."""
        row = await self._conn.fetchrow(
            _EXTENT, backfill.sensor_id, backfill.range_from, backfill.range_to
        )
        return row["first"], row["last"]

    async def cut(self, backfill_id: uuid.UUID, bounds: list[datetime]) -> None:
        """The backfill's slices; a second cut of the same backfill fails on their key."""
        await self._conn.execute(_SLICE, backfill_id, bounds)

    async def claim(self) -> Slice | None:
        """A slice left to convert, row-locked until the transaction ends; None when none is."""
        row = await self._conn.fetchrow(_CLAIM)
        if row is None:
            return None
        return Slice(
            row["backfill_id"],
            row["slice"],
            row["sensor_id"],
            row["range_from"],
            row["range_to"],
            (row["cursor_timestamp"], row["cursor_batch_id"], row["cursor_seq"]),
        )

    async def chunk(self, piece: Slice, limit: int) -> Chunk:
        after_at, after_batch, after_seq = piece.after
        if after_at is None:  # nothing done yet: from the slice's start
            after_at, after_batch, after_seq = piece.range_from, -1, -1
        rows = await self._conn.fetch(
            _CHUNK,
            piece.sensor_id,
            piece.range_from,
            piece.range_to,
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

    async def progress(self, piece: Slice, chunk: Chunk, *, at: datetime, finished: bool) -> bool:
        """The slice's cursor past the chunk (`finished`: the slice is done); whether that
        finished the whole backfill."""
        last = len(chunk) - 1
        ended = await self._conn.fetchval(
            _PROGRESS,
            piece.backfill_id,
            piece.number,
            chunk.timestamps[last] if chunk else None,
            chunk.batch_ids[last] if chunk else None,
            chunk.seqs[last] if chunk else None,
            len(chunk),
            at,
            finished,
        )
        return bool(ended)
