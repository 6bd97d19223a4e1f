"""Retention of readings and of their per-minute rollup per project (the sensor's home project
decides), as projects set it (`telemetry_seam.project_retention`)."""

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

_POLICIES = """
    SELECT pr.project_id, pr.telemetry_raw_retention_days, pr.telemetry_rollup_retention_days,
           ARRAY(SELECT s.id FROM telemetry_seam.sensors s WHERE s.project_id = pr.project_id)
               AS sensor_ids
    FROM telemetry_seam.project_retention pr
    ORDER BY pr.project_id
"""
# Whether minutes before $2 of these sensors (or of every sensor) wait for the refresher: their
# readings cannot go before the rollup has them.
_PENDING_BEFORE = """
    SELECT EXISTS (
        SELECT 1 FROM telemetry_rollup_pending
        WHERE (sensor_id = ANY($1::uuid[]) OR sensor_id IS NULL) AND first_minute < $2
    )
"""
_DELETE_READINGS = """
    WITH doomed AS (
        SELECT batch_id, seq FROM telemetry_records
        WHERE sensor_id = ANY($1::uuid[]) AND "timestamp" < $2
        LIMIT $3
    )
    DELETE FROM telemetry_records r USING doomed d
    WHERE r.sensor_id = ANY($1::uuid[]) AND r."timestamp" < $2
      AND r.batch_id = d.batch_id AND r.seq = d.seq
"""
_DELETE_ROLLUP = """
    DELETE FROM telemetry_rollup WHERE ctid IN (
        SELECT ctid FROM telemetry_rollup WHERE sensor_id = ANY($1::uuid[]) AND minute < $2
        LIMIT $3
    )
"""
# The raw retention of each of these sensors whose project sets one.
_RAW_DAYS = """
    SELECT s.id, pr.telemetry_raw_retention_days AS days
    FROM telemetry_seam.sensors s
    JOIN telemetry_seam.project_retention pr ON pr.project_id = s.project_id
    WHERE s.id = ANY($1::uuid[]) AND pr.telemetry_raw_retention_days IS NOT NULL
"""


@dataclass(frozen=True)
class Policy:
    project_id: uuid.UUID
    raw_days: int | None
    rollup_days: int | None
    sensor_ids: list[uuid.UUID]


def _count(result: str) -> int:
    return int(result.split()[-1])


class RetentionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def policies(self) -> list[Policy]:
        rows = await self._conn.fetch(_POLICIES)
        return [
            Policy(
                row["project_id"],
                row["telemetry_raw_retention_days"],
                row["telemetry_rollup_retention_days"],
                list(row["sensor_ids"]),
            )
            for row in rows
        ]

    async def pending_before(self, sensor_ids: list[uuid.UUID], before: datetime) -> bool:
        return bool(await self._conn.fetchval(_PENDING_BEFORE, sensor_ids, before))

    async def delete_readings(
        self, sensor_ids: list[uuid.UUID], *, before: datetime, limit: int
    ) -> int:
        return _count(await self._conn.execute(_DELETE_READINGS, sensor_ids, before, limit))

    async def delete_rollup(
        self, sensor_ids: list[uuid.UUID], *, before: datetime, limit: int
    ) -> int:
        return _count(await self._conn.execute(_DELETE_ROLLUP, sensor_ids, before, limit))

    async def raw_days(self, sensor_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        rows = await self._conn.fetch(_RAW_DAYS, sensor_ids)
        return {row["id"]: row["days"] for row in rows}
