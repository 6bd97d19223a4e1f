"""Retention per project (the job `telemetry.retention`, docs/jobs.md): a project may keep its
sensors' raw readings for fewer days than their per-minute rollup. Past the raw retention,
aggregates of whole minutes still come from the rollup (partial minutes at a range's edges have
no readings left).

Readings go only once the rollup has their minutes: a project whose minutes before the cutoff
still wait for the refresher is left for the next run. A reading that arrives later for a minute
already past its project's raw retention is stored, but the refresher leaves that minute's
rollup as it was (domain/rollup.py), and the next run deletes the reading.
"""

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from backend_common.db import Database
from telemetry_ingest_service.repositories.retention import RetentionRepository

CHUNK = 10_000
DAY = timedelta(days=1)


class ProjectRetention:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def apply(self, now: datetime) -> Mapping[str, int]:
        counts = {"readings_deleted": 0, "rollup_deleted": 0, "projects_deferred": 0}
        async with self._db.connection() as conn:
            policies = await RetentionRepository(conn).policies()
        for policy in policies:
            if not policy.sensor_ids:
                continue
            if policy.raw_days is not None:
                before = now - policy.raw_days * DAY
                async with self._db.connection() as conn:
                    waiting = await RetentionRepository(conn).pending_before(
                        policy.sensor_ids, before
                    )
                if waiting:
                    counts["projects_deferred"] += 1
                else:
                    counts["readings_deleted"] += await self._in_chunks(
                        "readings", policy.sensor_ids, before
                    )
            if policy.rollup_days is not None:
                counts["rollup_deleted"] += await self._in_chunks(
                    "rollup", policy.sensor_ids, now - policy.rollup_days * DAY
                )
        return counts

    async def _in_chunks(
        self, what: Literal["readings", "rollup"], sensor_ids: list[uuid.UUID], before: datetime
    ) -> int:
        deleted = 0
        while True:
            async with self._db.transaction() as conn:
                retention = RetentionRepository(conn)
                delete = (
                    retention.delete_readings if what == "readings" else retention.delete_rollup
                )
                count = await delete(sensor_ids, before=before, limit=CHUNK)
            deleted += count
            if count < CHUNK:
                return deleted


async def raw_cutoffs(
    conn: asyncpg.Connection, sensor_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, datetime]:
    """Per sensor whose project keeps raw readings for a while: the instant before which they
    are gone."""
    days = await RetentionRepository(conn).raw_days(sensor_ids)
    return {sensor_id: now - n * DAY for sensor_id, n in days.items()}
