"""A sensor's reachability as last announced (migration 0012), and the data gaps of capture
sessions while a bound sensor was offline."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

# Sensors heard from at least once whose reachability at $1 (heard within $2: online) is not the
# one last announced.
_CHANGED = """
    SELECT id, last_heartbeat, reachability,
           CASE WHEN last_heartbeat >= $1::timestamptz - $2::interval THEN 'online'
                ELSE 'offline' END AS now_reachable
    FROM sensors
    WHERE last_heartbeat IS NOT NULL
      AND reachability IS DISTINCT FROM
          CASE WHEN last_heartbeat >= $1::timestamptz - $2::interval THEN 'online'
               ELSE 'offline' END
    ORDER BY id
    LIMIT $3
"""
# Compare-and-set: only the first of racing watchers changes it.
_SET = """
    UPDATE sensors SET reachability = $2, reachability_changed_at = $3
    WHERE id = $1 AND reachability IS NOT DISTINCT FROM $4
    RETURNING true
"""
# Running sessions of runs the sensor is bound to get an open gap from `from` (or their start).
_OPEN_GAPS = """
    INSERT INTO capture_session_gaps (capture_session_id, sensor_id, from_at)
    SELECT cs.id, rs.sensor_id, greatest(coalesce($2, cs.started_at), cs.started_at)
    FROM run_sensors rs
    JOIN capture_sessions cs ON cs.run_id = rs.run_id AND cs.status = 'running'
    WHERE rs.sensor_id = ANY($1::uuid[])
    ON CONFLICT (capture_session_id, sensor_id) WHERE to_at IS NULL DO NOTHING
"""
_OFFLINE = "SELECT id, last_heartbeat FROM sensors WHERE reachability = 'offline'"
_CLOSE_GAPS = """
    UPDATE capture_session_gaps SET to_at = greatest(from_at, $2)
    WHERE sensor_id = $1 AND to_at IS NULL
"""


@dataclass(frozen=True)
class Change:
    sensor_id: uuid.UUID
    last_heartbeat: datetime
    before: str | None
    after: str


class SensorStatusRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def changed(self, *, now: datetime, offline_after: timedelta, limit: int) -> list[Change]:
        rows = await self._conn.fetch(_CHANGED, now, offline_after, limit)
        return [
            Change(row["id"], row["last_heartbeat"], row["reachability"], row["now_reachable"])
            for row in rows
        ]

    async def announce(self, change: Change, *, at: datetime) -> bool:
        """Records the new reachability unless another watcher did; whether this one did."""
        return bool(
            await self._conn.fetchval(_SET, change.sensor_id, change.after, at, change.before)
        )

    async def open_gaps(self, sensor_ids: list[uuid.UUID], *, since: datetime | None) -> int:
        """Open gaps (from `since`, or the session's start if later) in the running sessions of
        runs these sensors are bound to, where none is open; how many were opened."""
        result = await self._conn.execute(_OPEN_GAPS, sensor_ids, since)
        return int(result.split()[-1])

    async def offline(self) -> list[tuple[uuid.UUID, datetime | None]]:
        rows = await self._conn.fetch(_OFFLINE)
        return [(row["id"], row["last_heartbeat"]) for row in rows]

    async def close_gaps(self, sensor_id: uuid.UUID, *, at: datetime) -> int:
        result = await self._conn.execute(_CLOSE_GAPS, sensor_id, at)
        return int(result.split()[-1])
