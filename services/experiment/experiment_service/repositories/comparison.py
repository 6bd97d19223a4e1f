"""SQL of run comparison: capture sessions and bound sensors of a set of runs, and their
telemetry, read through the `telemetry_seam` functions (migration 0011), never from the telemetry
tables themselves. (Metric summaries are read by the metrics repository.)"""

import uuid
from collections.abc import Sequence

import asyncpg

from experiment_service.domain.comparison_models import (
    BoundSensorRef,
    OverlayBuckets,
    SessionRef,
    SessionStats,
    Trace,
)

_SESSIONS = """
    SELECT id, run_id, ordinal_number, started_at, stopped_at
    FROM capture_sessions WHERE run_id = ANY($1::uuid[])
    ORDER BY run_id, ordinal_number
"""
_BOUND_SENSORS = """
    SELECT rs.run_id, rs.sensor_id, s.name
    FROM run_sensors rs JOIN sensors s ON s.id = rs.sensor_id
    WHERE rs.run_id = ANY($1::uuid[])
    ORDER BY rs.run_id, s.name, rs.sensor_id
"""
_SENSOR_IN_PROJECT = """
    SELECT EXISTS (SELECT 1 FROM sensor_projects WHERE sensor_id = $1 AND project_id = $2)
"""
_SESSION_STATS = """
    SELECT capture_session_id, sensor_id, signal, count, min, max, avg, twa
    FROM telemetry_seam.session_stats($1::uuid[], $2::uuid[], $3)
"""
# Sums of values this large overflow; scaled down by a power of two they do not, and lose nothing.
_HUGE_VALUES_SCALE = 2.0**-600
_BEFORE_STATS = "SAVEPOINT before_session_stats"
_BEFORE_STATS_ROLLBACK = "ROLLBACK TO SAVEPOINT before_session_stats"
_SESSION_TRACES = """
    SELECT capture_session_id, width_us, t, count, min, max, first, last
    FROM telemetry_seam.session_traces($1::uuid[], $2, $3, $4)
"""


class ComparisonRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def sessions(self, run_ids: Sequence[uuid.UUID]) -> list[SessionRef]:
        """The runs' capture sessions, in ordinal order per run."""
        rows = await self._conn.fetch(_SESSIONS, list(run_ids))
        return [SessionRef(**dict(row)) for row in rows]

    async def bound_sensors(self, run_ids: Sequence[uuid.UUID]) -> list[BoundSensorRef]:
        """The sensors bound to the runs, by name per run."""
        rows = await self._conn.fetch(_BOUND_SENSORS, list(run_ids))
        return [BoundSensorRef(**dict(row)) for row in rows]

    async def sensor_in_project(self, sensor_id: uuid.UUID, project_id: uuid.UUID) -> bool:
        found: bool = await self._conn.fetchval(_SENSOR_IN_PROJECT, sensor_id, project_id)
        return found

    async def session_stats(
        self, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> list[SessionStats]:
        """Per (capture session, sensor) pair and signal, the physical values' statistics. Needs
        the caller's transaction: values whose sums overflow are summed again, scaled, after a
        rollback to a savepoint."""
        if not pairs:
            return []
        sessions, sensors = (list(ids) for ids in zip(*pairs, strict=True))
        await self._conn.execute(_BEFORE_STATS)
        try:
            rows = await self._conn.fetch(_SESSION_STATS, sessions, sensors, 1.0)
        except asyncpg.NumericValueOutOfRangeError:
            await self._conn.execute(_BEFORE_STATS_ROLLBACK)
            rows = await self._conn.fetch(_SESSION_STATS, sessions, sensors, _HUGE_VALUES_SCALE)
        return [SessionStats(**dict(row)) for row in rows]

    async def session_traces(
        self, session_ids: Sequence[uuid.UUID], *, sensor_id: uuid.UUID, signal: str, points: int
    ) -> list[Trace]:
        """One sensor's signal in each session that holds some, in at most `points` buckets of
        one width from the session's start."""
        rows = await self._conn.fetch(_SESSION_TRACES, list(session_ids), sensor_id, signal, points)
        return [
            Trace(
                capture_session_id=row["capture_session_id"],
                width_us=row["width_us"],
                buckets=OverlayBuckets.model_validate(
                    {name: row[name] for name in OverlayBuckets.model_fields}
                ),
            )
            for row in rows
        ]
