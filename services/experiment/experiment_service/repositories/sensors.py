import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from backend_common.pagination import CursorKey, Page, PageRequest
from backend_common.sensor_tokens import MintedToken
from backend_common.sql import Query, escape_like
from backend_common.statuses import SensorStatus
from experiment_service.domain.listing import SortOrder
from experiment_service.domain.models import (
    BoundSensor,
    GraceToken,
    IngestError,
    Sensor,
    SensorProject,
)
from experiment_service.models import SensorCreate, SensorUpdate
from experiment_service.repositories.cursor_keys import BigId
from experiment_service.repositories.listing import page_in, paged

TEXT_EXPR = "name || ' ' || description"
UPDATABLE = ("name", "type", "input_unit", "display_unit", "description", "channels")


@dataclass(frozen=True)
class SensorView:
    """What a sensor's computed fields depend on: the time, and the liveness thresholds."""

    now: datetime
    online_within: timedelta
    offline_after: timedelta


class IngestErrorKey(CursorKey):
    """Cursor of the ingest error journal, newest first: the last entry's id."""

    id: BigId


class BoundSensorKey(CursorKey):
    """Cursor of a run's sensors, in sensor id order."""

    sensor_id: uuid.UUID


@dataclass(frozen=True)
class SensorFilter:
    project_id: uuid.UUID
    types: tuple[str, ...] = ()
    statuses: tuple[SensorStatus, ...] = ()
    q: str | None = None


def _select(query: Query, view: SensorView) -> str:
    """The sensor as the API shows it, with its projects, liveness, active profile and tokens."""
    now = query.param(view.now)
    return f"""
        SELECT * FROM (
            SELECT s.id, s.project_id, s.name, s.type, s.input_unit, s.display_unit,
                   s.description, s.channels, s.last_heartbeat, s.created_by, s.created_at,
                   s.updated_at,
                   ARRAY(SELECT sp.project_id FROM sensor_projects sp WHERE sp.sensor_id = s.id
                         ORDER BY sp.added_at, sp.project_id) AS project_ids,
                   CASE WHEN s.last_heartbeat IS NULL THEN 'never_seen'
                        WHEN s.last_heartbeat >= {now}::timestamptz
                             - {query.param(view.online_within)}::interval THEN 'online'
                        WHEN s.last_heartbeat >= {now}::timestamptz
                             - {query.param(view.offline_after)}::interval THEN 'delayed'
                        ELSE 'offline' END AS status,
                   (SELECT p.id FROM conversion_profiles p
                    WHERE p.sensor_id = s.id AND p.valid_from <= {now}
                      AND (p.valid_to IS NULL OR p.valid_to > {now})) AS active_profile_id,
                   (SELECT jsonb_agg(jsonb_build_object(
                               'token_preview', t.preview, 'created_at', t.created_at,
                               'expires_at', t.expires_at, 'last_used_at', t.last_used_at)
                           ORDER BY t.created_at DESC)
                    FROM sensor_tokens t
                    WHERE t.sensor_id = s.id
                      AND (t.expires_at IS NULL OR t.expires_at > {now})) AS tokens
            FROM sensors s
        ) sensor
    """


def _sensor(row: Any) -> Sensor:
    data = dict(row)
    tokens = data.pop("tokens") or []
    current = next((token for token in tokens if token["expires_at"] is None), None)
    return Sensor(
        **data,
        token_preview=current["token_preview"] if current else None,
        token_created_at=current["created_at"] if current else None,
        token_last_used_at=current["last_used_at"] if current else None,
        grace_tokens=[GraceToken.model_validate(t) for t in tokens if t["expires_at"] is not None],
    )


_INSERT = """
    INSERT INTO sensors (project_id, name, type, input_unit, display_unit, description, channels,
                         created_by)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    RETURNING id
"""
_ADD_PROJECT = """
    INSERT INTO sensor_projects (sensor_id, project_id, added_by) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING
    RETURNING sensor_id, project_id, added_by, added_at
"""
# Serialises the additions of sensors to one project (created there or shared with it) until the
# transaction ends, so the count after it sees every sensor committed before (the count must be a
# statement of its own after the lock: a statement's snapshot is taken when it starts).
_LOCK_PROJECT_SENSORS = "SELECT pg_advisory_xact_lock(hashtextextended('sensors:' || $1, 0))"
_COUNT_IN_PROJECT = "SELECT count(*) FROM sensor_projects WHERE project_id = $1"
_PROJECTS = """
    SELECT sp.sensor_id, sp.project_id, sp.project_id = s.project_id AS home, sp.added_by,
           sp.added_at
    FROM sensor_projects sp JOIN sensors s ON s.id = sp.sensor_id
    WHERE sp.sensor_id = $1
    ORDER BY sp.added_at, sp.project_id
"""
_REMOVE_PROJECT = "DELETE FROM sensor_projects WHERE sensor_id = $1 AND project_id = $2"
_PROJECTS_OF = """
    SELECT s.project_id,
           ARRAY(SELECT project_id FROM sensor_projects WHERE sensor_id = s.id) AS project_ids
    FROM sensors s WHERE s.id = $1
"""
_LOCKS = {
    "update": "SELECT 1 FROM sensors WHERE id = $1 FOR UPDATE",
    "share": "SELECT 1 FROM sensors WHERE id = $1 FOR SHARE",
}
_IN_ACTIVE_CAPTURE = """
    SELECT EXISTS (
        SELECT 1 FROM run_sensors rs
        JOIN capture_sessions cs ON cs.run_id = rs.run_id AND cs.status = 'running'
        WHERE rs.sensor_id = $1
    )
"""
_DELETE = "DELETE FROM sensors WHERE id = $1"
_INSERT_TOKEN = """
    INSERT INTO sensor_tokens (token_hash, sensor_id, preview) VALUES ($1, $2, $3)
"""
# The current token (and any still in its grace) expires at `until` at the latest; expired
# digests are forgotten. Two statements: a row updated in a WITH cannot also be deleted by it.
_RETIRE_TOKENS = """
    UPDATE sensor_tokens SET expires_at = least(coalesce(expires_at, $2), $2)
    WHERE sensor_id = $1
"""
_FORGET_EXPIRED_TOKENS = "DELETE FROM sensor_tokens WHERE sensor_id = $1 AND expires_at <= $2"
_REVOKE_TOKENS = "DELETE FROM sensor_tokens WHERE sensor_id = $1"
# Written by telemetry ingest; newest first.
_INGEST_ERRORS = """
    SELECT id, sensor_id, at, status, code, detail, batch_id, readings, rejected, errors,
           request_id
    FROM ingest_errors
    WHERE sensor_id = $1 AND ($2::bigint IS NULL OR id < $2)
    ORDER BY id DESC LIMIT $3
"""


class SensorRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(self, *, created_by: uuid.UUID, data: SensorCreate) -> uuid.UUID:
        sensor_id: uuid.UUID = await self._conn.fetchval(
            _INSERT,
            data.project_id,
            data.name,
            data.type,
            data.input_unit,
            data.display_unit,
            data.description,
            [channel.model_dump() for channel in data.channels],
            created_by,
        )
        await self.add_project(sensor_id, data.project_id, added_by=created_by)
        return sensor_id

    async def count_in_locked_project(self, project_id: uuid.UUID) -> int:
        """The sensors of the project (its own and those shared with it), after locking its
        sensor additions until the transaction ends (needs a transaction)."""
        await self._conn.execute(_LOCK_PROJECT_SENSORS, str(project_id))
        count: int = await self._conn.fetchval(_COUNT_IN_PROJECT, project_id)
        return count

    async def get(self, sensor_id: uuid.UUID, view: SensorView) -> Sensor | None:
        query = Query()
        select = _select(query, view)
        row = await self._conn.fetchrow(
            f"{select} WHERE id = {query.param(sensor_id)}", *query.params
        )
        return _sensor(row) if row else None

    async def projects_of(
        self, sensor_id: uuid.UUID, *, lock: Literal["update", "share"] | None = None
    ) -> tuple[uuid.UUID, list[uuid.UUID]] | None:
        """The home project and every project of the sensor, row-locking it (`update` or
        `share`) if asked; None when there is no such sensor."""
        # Locked first, read after: a statement that waited for the lock would still see the
        # projects as they were before the transaction it waited for.
        if lock is not None and not await self.lock(sensor_id, lock):
            return None
        row = await self._conn.fetchrow(_PROJECTS_OF, sensor_id)
        return (row["project_id"], row["project_ids"]) if row else None

    async def lock(self, sensor_id: uuid.UUID, mode: Literal["update", "share"]) -> bool:
        """Row-locks the sensor until the transaction ends; False when there is no such sensor."""
        return await self._conn.fetchval(_LOCKS[mode], sensor_id) is not None

    async def bound_to_run(
        self, run_id: uuid.UUID, view: SensorView, page: PageRequest
    ) -> Page[BoundSensor]:
        """The sensors bound to a run, in sensor id order."""
        after = page.after(BoundSensorKey)
        rows = await self._bound(
            run_id, view, after=None if after is None else after.sensor_id, limit=page.fetch
        )
        return page.page(rows, key=lambda bound: BoundSensorKey(sensor_id=bound.sensor.id))

    async def bound_one(
        self, run_id: uuid.UUID, sensor_id: uuid.UUID, view: SensorView
    ) -> BoundSensor | None:
        found = await self._bound(run_id, view, only=sensor_id, limit=1)
        return found[0] if found else None

    async def _bound(
        self,
        run_id: uuid.UUID,
        view: SensorView,
        *,
        after: uuid.UUID | None = None,
        only: uuid.UUID | None = None,
        limit: int,
    ) -> list[BoundSensor]:
        query = Query()
        select = _select(query, view)
        query.where(f"rs.run_id = {query.param(run_id)}")
        if after is not None:
            query.where(f"rs.sensor_id > {query.param(after)}")
        if only is not None:
            query.where(f"rs.sensor_id = {query.param(only)}")
        rows = await self._conn.fetch(
            f"""
            SELECT rs.run_id, rs.bound_by, rs.bound_at, to_jsonb(bound) AS sensor
            FROM run_sensors rs JOIN ({select}) bound ON bound.id = rs.sensor_id
            WHERE {query.where_sql}
            ORDER BY rs.sensor_id LIMIT {query.param(limit)}
            """,
            *query.params,
        )
        return [
            BoundSensor(
                run_id=row["run_id"],
                bound_by=row["bound_by"],
                bound_at=row["bound_at"],
                sensor=_sensor(row["sensor"]),
            )
            for row in rows
        ]

    async def find(
        self, flt: SensorFilter, sort: SortOrder, page: PageRequest, view: SensorView
    ) -> Page[Sensor]:
        query = Query()
        select = _select(query, view)
        query.where(
            "id IN (SELECT sensor_id FROM sensor_projects "
            f"WHERE project_id = {query.param(flt.project_id)})"
        )
        if flt.types:
            query.where(f"type = ANY({query.param(list(flt.types))}::text[])")
        if flt.statuses:
            query.where(f"status = ANY({query.param([str(s) for s in flt.statuses])}::text[])")
        if flt.q is not None:
            query.where(f"({TEXT_EXPR}) ILIKE {query.param('%' + escape_like(flt.q) + '%')}")
        rows = await self._conn.fetch(paged(select, query, sort, page), *query.params)
        return page_in([_sensor(row) for row in rows], sort, page)

    async def update(self, sensor_id: uuid.UUID, patch: SensorUpdate) -> None:
        query = Query()
        changes = patch.changes()
        if patch.channels is not None:
            changes["channels"] = [channel.model_dump() for channel in patch.channels]
        assignments = query.assignments(changes, UPDATABLE)
        await self._conn.execute(
            f"UPDATE sensors SET {assignments} WHERE id = {query.param(sensor_id)}", *query.params
        )

    async def in_active_capture(self, sensor_id: uuid.UUID) -> bool:
        """Whether a run the sensor is bound to has a running capture session."""
        active: bool = await self._conn.fetchval(_IN_ACTIVE_CAPTURE, sensor_id)
        return active

    async def delete(self, sensor_id: uuid.UUID) -> None:
        await self._conn.execute(_DELETE, sensor_id)

    async def add_token(self, sensor_id: uuid.UUID, token: MintedToken) -> None:
        await self._conn.execute(_INSERT_TOKEN, token.digest, sensor_id, token.preview)

    async def retire_tokens(self, sensor_id: uuid.UUID, *, until: datetime, now: datetime) -> None:
        """Every token of the sensor stops working at `until` (or earlier if it already would)."""
        await self._conn.execute(_RETIRE_TOKENS, sensor_id, until)
        await self._conn.execute(_FORGET_EXPIRED_TOKENS, sensor_id, now)

    async def revoke_tokens(self, sensor_id: uuid.UUID) -> None:
        await self._conn.execute(_REVOKE_TOKENS, sensor_id)

    async def ingest_errors(self, sensor_id: uuid.UUID, page: PageRequest) -> Page[IngestError]:
        before = page.after(IngestErrorKey)
        rows = await self._conn.fetch(
            _INGEST_ERRORS, sensor_id, None if before is None else before.id, page.fetch
        )
        return page.page(
            [IngestError.model_validate(dict(row)) for row in rows],
            key=lambda error: IngestErrorKey(id=error.id),
        )

    async def projects(self, sensor_id: uuid.UUID) -> list[SensorProject]:
        rows = await self._conn.fetch(_PROJECTS, sensor_id)
        return [SensorProject.model_validate(dict(row)) for row in rows]

    async def add_project(
        self, sensor_id: uuid.UUID, project_id: uuid.UUID, *, added_by: uuid.UUID
    ) -> bool:
        """False when the sensor already was in the project."""
        return await self._conn.fetchrow(_ADD_PROJECT, sensor_id, project_id, added_by) is not None

    async def remove_project(self, sensor_id: uuid.UUID, project_id: uuid.UUID) -> bool:
        result: str = await self._conn.execute(_REMOVE_PROJECT, sensor_id, project_id)
        return result != "DELETE 0"
