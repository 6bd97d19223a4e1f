"""Backfills of conversion profiles published for a past start (docs/telemetry.md, "Backfill")."""

import uuid
from datetime import datetime

import asyncpg

from experiment_service.domain.models import Backfill

_COLUMNS = """
    id, sensor_id, profile_id, range_from, range_to, status, rows_total, rows_done, error,
    started_at, updated_at, finished_at
"""
_INSERT = f"""
    INSERT INTO conversion_backfills
        (sensor_id, profile_id, range_from, range_to, rows_total, created_by, started_at,
         updated_at)
    VALUES ($1, $2, $3, $4, telemetry_seam.count_readings($1, $3, $4), $5, $6, $6)
    RETURNING {_COLUMNS}
"""
_GET = f"SELECT {_COLUMNS} FROM conversion_backfills WHERE id = $1"
_OF_PROFILE = f"SELECT {_COLUMNS} FROM conversion_backfills WHERE profile_id = $1"
_UNANNOUNCED = f"""
    SELECT {_COLUMNS} FROM conversion_backfills
    WHERE finished_at IS NOT NULL AND announced_at IS NULL
    ORDER BY finished_at, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
"""
_ANNOUNCED = "UPDATE conversion_backfills SET announced_at = $2 WHERE id = $1"


class BackfillRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(
        self,
        *,
        sensor_id: uuid.UUID,
        profile_id: uuid.UUID,
        range_from: datetime,
        range_to: datetime | None,
        created_by: uuid.UUID,
        now: datetime,
    ) -> Backfill:
        row = await self._conn.fetchrow(
            _INSERT, sensor_id, profile_id, range_from, range_to, created_by, now
        )
        return Backfill.model_validate(dict(row))

    async def get(self, backfill_id: uuid.UUID) -> Backfill | None:
        row = await self._conn.fetchrow(_GET, backfill_id)
        return None if row is None else Backfill.model_validate(dict(row))

    async def of_profile(self, profile_id: uuid.UUID) -> Backfill | None:
        row = await self._conn.fetchrow(_OF_PROFILE, profile_id)
        return None if row is None else Backfill.model_validate(dict(row))

    async def lock_unannounced(self, limit: int) -> list[Backfill]:
        """Finished backfills not yet announced, locked (others skip them)."""
        rows = await self._conn.fetch(_UNANNOUNCED, limit)
        return [Backfill.model_validate(dict(row)) for row in rows]

    async def mark_announced(self, backfill_id: uuid.UUID, at: datetime) -> None:
        await self._conn.execute(_ANNOUNCED, backfill_id, at)
