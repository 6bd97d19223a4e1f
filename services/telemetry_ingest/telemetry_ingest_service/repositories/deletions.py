"""The telemetry of sensors deleted with their project (`telemetry_seam.deleted_sensors`),
deleted a chunk per statement: readings, batches, rollup minutes, queued minutes and the ingest
error journal."""

import uuid
from datetime import datetime

import asyncpg

_PENDING = """
    SELECT sensor_id FROM telemetry_seam.deleted_sensors ORDER BY deleted_at, sensor_id LIMIT $1
"""
_DELETE_READINGS = """
    WITH doomed AS (
        SELECT batch_id, seq FROM telemetry_records WHERE sensor_id = $1 LIMIT $2
    )
    DELETE FROM telemetry_records r USING doomed d
    WHERE r.sensor_id = $1 AND r.batch_id = d.batch_id AND r.seq = d.seq
"""
_CHUNKS = {
    "readings": _DELETE_READINGS,
    "batches": """
        DELETE FROM telemetry_batches WHERE id = ANY(ARRAY(
            SELECT id FROM telemetry_batches WHERE sensor_id = $1 LIMIT $2))
    """,
    "rollup": """
        DELETE FROM telemetry_rollup WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM telemetry_rollup WHERE sensor_id = $1 LIMIT $2))
    """,
    "rollup_pending": """
        DELETE FROM telemetry_rollup_pending WHERE id = ANY(ARRAY(
            SELECT id FROM telemetry_rollup_pending WHERE sensor_id = $1 LIMIT $2))
    """,
    "ingest_errors": """
        DELETE FROM ingest_errors WHERE id = ANY(ARRAY(
            SELECT id FROM ingest_errors WHERE sensor_id = $1 LIMIT $2))
    """,
}
# Readings first: a batch row is what a resend is checked against while readings remain.
KINDS = tuple(_CHUNKS)
_DONE = "SELECT telemetry_seam.sensor_readings_deleted($1, $2)"


def _count(result: str) -> int:
    return int(result.split()[-1])


class SensorDeletionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def pending(self, limit: int) -> list[uuid.UUID]:
        return [row["sensor_id"] for row in await self._conn.fetch(_PENDING, limit)]

    async def delete_chunk(self, kind: str, sensor_id: uuid.UUID, *, limit: int) -> int:
        return _count(await self._conn.execute(_CHUNKS[kind], sensor_id, limit))

    async def done(self, sensor_id: uuid.UUID, *, now: datetime) -> None:
        await self._conn.execute(_DONE, sensor_id, now)
