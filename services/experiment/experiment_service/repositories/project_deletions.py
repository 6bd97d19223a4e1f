"""SQL of project deletion (docs/operations.md, "Deleting a project"): the record of a deleted
project, the revocation of its sensors' tokens, and the chunks in which its rows go. Every
chunk statement deletes at most `limit` rows and answers how many it deleted."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

_COLUMNS = "project_id, event_id, deleted_at, recorded_at, finished_at, result"
_RECORD = f"""
    INSERT INTO project_deletions (project_id, event_id, deleted_at, recorded_at)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (project_id) DO NOTHING
    RETURNING {_COLUMNS}
"""
_GET = f"SELECT {_COLUMNS} FROM project_deletions WHERE project_id = $1"
_PENDING = """
    SELECT project_id FROM project_deletions WHERE finished_at IS NULL
    ORDER BY recorded_at, project_id
"""
_FINISH = "UPDATE project_deletions SET finished_at = $2 WHERE project_id = $1"
_COUNT = """
    UPDATE project_deletions
    SET result = result || jsonb_build_object($2::text, coalesce((result ->> $2)::bigint, 0) + $3)
    WHERE project_id = $1
"""
# The project's sensors that are shared into another project (not one being deleted) get the
# project that shared them first as their home; the sensor, its token and readings stay.
_MOVE_HOMES = """
    UPDATE sensors s SET project_id = heir.project_id
    FROM (
        SELECT DISTINCT ON (sp.sensor_id) sp.sensor_id, sp.project_id
        FROM sensors h JOIN sensor_projects sp ON sp.sensor_id = h.id
        WHERE h.project_id = $1 AND sp.project_id <> $1
          AND NOT EXISTS (SELECT 1 FROM project_deletions d WHERE d.project_id = sp.project_id)
        ORDER BY sp.sensor_id, sp.added_at, sp.project_id
    ) heir
    WHERE s.id = heir.sensor_id
    RETURNING s.id, s.project_id
"""
# Deleting a token row tells telemetry ingest to forget it (trigger sensor_tokens_notify).
_REVOKE_TOKENS = """
    DELETE FROM sensor_tokens t USING sensors s WHERE t.sensor_id = s.id AND s.project_id = $1
"""
_DELETE_DELIVERIES = """
    DELETE FROM webhook_deliveries WHERE id = ANY(ARRAY(
        SELECT d.id FROM webhook_subscriptions s JOIN webhook_deliveries d
            ON d.subscription_id = s.id
        WHERE s.project_id = $1 LIMIT $2))
"""
_DELETE_SUBSCRIPTIONS = """
    DELETE FROM webhook_subscriptions WHERE id = ANY(ARRAY(
        SELECT id FROM webhook_subscriptions WHERE project_id = $1 LIMIT $2))
"""
_DELETE_EVENTS = """
    DELETE FROM webhook_events WHERE id = ANY(ARRAY(
        SELECT id FROM webhook_events WHERE project_id = $1 LIMIT $2))
"""
# The trigger artifacts_forget queues each object in artifact_trash, which the artifact upkeep
# of every API process empties (docs/artifacts.md).
_DELETE_ARTIFACTS = """
    DELETE FROM artifacts WHERE id = ANY(ARRAY(
        SELECT a.id FROM runs r JOIN artifacts a ON a.run_id = r.id
        WHERE r.project_id = $1 LIMIT $2))
"""
_DELETE_METRICS = """
    DELETE FROM run_metrics WHERE ctid = ANY(ARRAY(
        SELECT m.ctid FROM runs r JOIN run_metrics m ON m.run_id = r.id
        WHERE r.project_id = $1 LIMIT $2))
"""
_DELETE_METRIC_TILES = """
    DELETE FROM run_metric_tiles WHERE ctid = ANY(ARRAY(
        SELECT t.ctid FROM runs r JOIN run_metric_tiles t ON t.run_id = r.id
        WHERE r.project_id = $1 LIMIT $2))
"""
# With each run go its capture sessions (and their gaps), bindings, metric batches and
# summaries (ON DELETE CASCADE).
_DELETE_RUNS = """
    DELETE FROM runs WHERE id = ANY(ARRAY(SELECT id FROM runs WHERE project_id = $1 LIMIT $2))
"""
_DELETE_EXPERIMENTS = """
    DELETE FROM experiments WHERE id = ANY(ARRAY(
        SELECT id FROM experiments WHERE project_id = $1 LIMIT $2))
"""
# The project's own sensors (shared ones moved first) go with their profiles, tokens and
# project links; telemetry deletes their readings later (telemetry_seam.deleted_sensors).
_DELETE_SENSORS = """
    WITH gone AS (
        DELETE FROM sensors WHERE id = ANY(ARRAY(
            SELECT id FROM sensors WHERE project_id = $1 LIMIT $2))
        RETURNING id
    ), noted AS (
        INSERT INTO deleted_sensors (sensor_id, project_id, deleted_at)
        SELECT id, $1, $3 FROM gone
        ON CONFLICT (sensor_id) DO NOTHING
    )
    SELECT count(*) FROM gone
"""
# Sensors of other projects shared into this one are only unshared.
_UNSHARE_SENSORS = """
    DELETE FROM sensor_projects WHERE (sensor_id, project_id) IN (
        SELECT sensor_id, project_id FROM sensor_projects WHERE project_id = $1 LIMIT $2)
"""
_DELETE_SETTINGS = (
    "DELETE FROM project_settings WHERE project_id = $1",
    "DELETE FROM project_raw_policies WHERE project_id = $1",
    "DELETE FROM artifact_usage WHERE project_id = $1",
)


@dataclass(frozen=True)
class ProjectDeletion:
    project_id: uuid.UUID
    event_id: uuid.UUID
    deleted_at: datetime
    recorded_at: datetime
    finished_at: datetime | None
    result: dict[str, Any]


@dataclass(frozen=True)
class MovedSensor:
    sensor_id: uuid.UUID
    home_project_id: uuid.UUID


def _count(result: str) -> int:
    return int(result.split()[-1])


def _deletion(row: asyncpg.Record) -> ProjectDeletion:
    return ProjectDeletion(
        project_id=row["project_id"],
        event_id=row["event_id"],
        deleted_at=row["deleted_at"],
        recorded_at=row["recorded_at"],
        finished_at=row["finished_at"],
        result=dict(row["result"]),
    )


class ProjectDeletionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def record(
        self, project_id: uuid.UUID, *, event_id: uuid.UUID, deleted_at: datetime, now: datetime
    ) -> ProjectDeletion | None:
        """The new record; None when the project's deletion was recorded before."""
        row = await self._conn.fetchrow(_RECORD, project_id, event_id, deleted_at, now)
        return None if row is None else _deletion(row)

    async def get(self, project_id: uuid.UUID) -> ProjectDeletion | None:
        row = await self._conn.fetchrow(_GET, project_id)
        return None if row is None else _deletion(row)

    async def pending(self) -> list[uuid.UUID]:
        return [row["project_id"] for row in await self._conn.fetch(_PENDING)]

    async def finish(self, project_id: uuid.UUID, *, now: datetime) -> None:
        await self._conn.execute(_FINISH, project_id, now)

    async def add_count(self, project_id: uuid.UUID, what: str, count: int) -> None:
        await self._conn.execute(_COUNT, project_id, what, count)

    async def move_shared_sensors(self, project_id: uuid.UUID) -> list[MovedSensor]:
        rows = await self._conn.fetch(_MOVE_HOMES, project_id)
        return [MovedSensor(row["id"], row["project_id"]) for row in rows]

    async def revoke_sensor_tokens(self, project_id: uuid.UUID) -> int:
        return _count(await self._conn.execute(_REVOKE_TOKENS, project_id))

    async def delete_chunk(self, what: str, project_id: uuid.UUID, *, limit: int) -> int:
        return _count(await self._conn.execute(_CHUNKS[what], project_id, limit))

    async def delete_sensors(self, project_id: uuid.UUID, *, limit: int, now: datetime) -> int:
        return int(await self._conn.fetchval(_DELETE_SENSORS, project_id, limit, now))

    async def delete_settings(self, project_id: uuid.UUID) -> None:
        for statement in _DELETE_SETTINGS:
            await self._conn.execute(statement, project_id)


_CHUNKS = {
    "webhook_deliveries": _DELETE_DELIVERIES,
    "webhook_subscriptions": _DELETE_SUBSCRIPTIONS,
    "webhook_events": _DELETE_EVENTS,
    "artifacts": _DELETE_ARTIFACTS,
    "metric_points": _DELETE_METRICS,
    "metric_tiles": _DELETE_METRIC_TILES,
    "runs": _DELETE_RUNS,
    "experiments": _DELETE_EXPERIMENTS,
    "sensor_links": _UNSHARE_SENSORS,
}
