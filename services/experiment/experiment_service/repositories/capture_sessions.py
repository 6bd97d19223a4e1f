import uuid
from datetime import datetime

import asyncpg

from backend_common.pagination import CursorKey, Page, PageRequest
from backend_common.statuses import CaptureStatus, RunStatus
from experiment_service.domain.errors import CaptureAlreadyRunning
from experiment_service.domain.models import CaptureSession
from experiment_service.repositories.cursor_keys import Int4

# The session's data gaps ride along as JSON, in the order they opened.
GAPS = """
    (SELECT coalesce(jsonb_agg(jsonb_build_object('sensor_id', g.sensor_id, 'from', g.from_at,
                                                  'to', g.to_at) ORDER BY g.id), '[]'::jsonb)
     FROM capture_session_gaps g WHERE g.capture_session_id = capture_sessions.id) AS gaps
"""
# A stopped session shows `backfilling` while a backfill of a sensor bound to its run recomputes
# readings of its time (docs/telemetry.md, "Backfill"); its own status shows again once done.
STATUS = """
    CASE WHEN capture_sessions.status IN ('succeeded', 'failed') AND EXISTS (
        SELECT 1 FROM conversion_backfills b JOIN run_sensors rs ON rs.sensor_id = b.sensor_id
        WHERE rs.run_id = capture_sessions.run_id AND b.status = 'running'
          AND b.range_from < coalesce(capture_sessions.stopped_at, 'infinity')
          AND (b.range_to IS NULL OR b.range_to > capture_sessions.started_at)
    ) THEN 'backfilling' ELSE capture_sessions.status END AS status
"""
COLUMNS = (
    f"id, run_id, project_id, ordinal_number, {STATUS}, started_at, stopped_at, initiated_by,"
    f" notes, failure_reason, planned_stop_at, {GAPS}, created_at, updated_at"
)


class CaptureKey(CursorKey):
    """Cursor of a run's capture sessions, in ordinal order."""

    ordinal: Int4


# Takes the run's next ordinal (the row lock also serialises concurrent starts).
_INSERT_RUNNING = f"""
    WITH next AS (
        UPDATE runs SET last_capture_ordinal = last_capture_ordinal + 1 WHERE id = $1
        RETURNING last_capture_ordinal
    )
    INSERT INTO capture_sessions (run_id, project_id, ordinal_number, status, started_at,
                                  initiated_by, notes, planned_stop_at)
    SELECT $1, $2, last_capture_ordinal, 'running', now(), $3, $4,
           now() + make_interval(secs => $5::float8)
    FROM next
    RETURNING {COLUMNS}
"""
_GET = f"SELECT {COLUMNS} FROM capture_sessions WHERE id = $1 AND run_id = $2"
_GET_FOR_UPDATE = f"SELECT {COLUMNS} FROM capture_sessions WHERE id = $1 AND run_id = $2 FOR UPDATE"
_LIST = f"""
    SELECT {COLUMNS} FROM capture_sessions
    WHERE run_id = $1 AND ($2::int IS NULL OR ordinal_number > $2)
    ORDER BY ordinal_number LIMIT $3
"""
_RUNNING_OF = f"SELECT {COLUMNS} FROM capture_sessions WHERE run_id = $1 AND status = 'running'"
_HAS_RUNNING = (
    "SELECT EXISTS (SELECT 1 FROM capture_sessions WHERE run_id = $1 AND status = 'running')"
)
_ARCHIVE_ALL = """
    UPDATE capture_sessions SET status = 'archived' WHERE run_id = $1 AND status <> 'archived'
"""
_DELETE = "DELETE FROM capture_sessions WHERE id = $1"
_STOP = f"""
    UPDATE capture_sessions SET status = $2, stopped_at = $3, failure_reason = $4 WHERE id = $1
    RETURNING {COLUMNS}
"""
_SET_NOTES = f"UPDATE capture_sessions SET notes = $2 WHERE id = $1 RETURNING {COLUMNS}"
_CLOSE_GAPS = """
    UPDATE capture_session_gaps SET to_at = greatest(from_at, $2)
    WHERE capture_session_id = $1 AND to_at IS NULL
"""
# Running sessions that should not be: past their planned stop, or in a run that is no longer
# running (the run's status and end come along).
_DUE_TO_STOP = f"""
    SELECT {COLUMNS} FROM capture_sessions
    WHERE status = 'running' AND planned_stop_at <= $1
    ORDER BY planned_stop_at, id LIMIT $2
"""
_OF_ENDED_RUNS = f"""
    SELECT {COLUMNS},
           (SELECT r.status FROM runs r WHERE r.id = capture_sessions.run_id) AS run_status,
           (SELECT r.finished_at FROM runs r WHERE r.id = capture_sessions.run_id)
               AS run_finished_at
    FROM capture_sessions
    WHERE status = 'running' AND run_id IN (SELECT id FROM runs WHERE status <> 'running')
    ORDER BY id LIMIT $1
"""


class CaptureSessionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert_running(
        self,
        *,
        run_id: uuid.UUID,
        project_id: uuid.UUID,
        initiated_by: uuid.UUID,
        notes: str,
        duration_seconds: float | None = None,
    ) -> CaptureSession:
        try:
            row = await self._conn.fetchrow(
                _INSERT_RUNNING, run_id, project_id, initiated_by, notes, duration_seconds
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "capture_sessions_one_running_idx":
                raise CaptureAlreadyRunning() from None
            raise
        return CaptureSession.model_validate(dict(row))

    async def get(
        self, session_id: uuid.UUID, run_id: uuid.UUID, *, for_update: bool = False
    ) -> CaptureSession | None:
        row = await self._conn.fetchrow(_GET_FOR_UPDATE if for_update else _GET, session_id, run_id)
        return CaptureSession.model_validate(dict(row)) if row else None

    async def find(self, run_id: uuid.UUID, page: PageRequest) -> Page[CaptureSession]:
        after = page.after(CaptureKey)
        rows = await self._conn.fetch(
            _LIST, run_id, None if after is None else after.ordinal, page.fetch
        )
        return page.page(
            [CaptureSession.model_validate(dict(row)) for row in rows],
            key=lambda session: CaptureKey(ordinal=session.ordinal_number),
        )

    async def running_of(self, run_id: uuid.UUID) -> CaptureSession | None:
        row = await self._conn.fetchrow(_RUNNING_OF, run_id)
        return CaptureSession.model_validate(dict(row)) if row else None

    async def has_running(self, run_id: uuid.UUID) -> bool:
        running: bool = await self._conn.fetchval(_HAS_RUNNING, run_id)
        return running

    async def stop(
        self,
        session_id: uuid.UUID,
        *,
        status: CaptureStatus,
        stopped_at: datetime,
        failure_reason: str | None,
    ) -> CaptureSession:
        await self._conn.execute(_CLOSE_GAPS, session_id, stopped_at)
        row = await self._conn.fetchrow(_STOP, session_id, status, stopped_at, failure_reason)
        return CaptureSession.model_validate(dict(row))

    async def due_to_stop(self, now: datetime, limit: int) -> list[CaptureSession]:
        """Running sessions whose planned stop has come, earliest first."""
        rows = await self._conn.fetch(_DUE_TO_STOP, now, limit)
        return [CaptureSession.model_validate(dict(row)) for row in rows]

    async def of_ended_runs(
        self, limit: int
    ) -> list[tuple[CaptureSession, RunStatus, datetime | None]]:
        """Running sessions of runs that are no longer running, with the run's status and end."""
        rows = await self._conn.fetch(_OF_ENDED_RUNS, limit)
        return [
            (
                CaptureSession.model_validate(
                    {k: v for k, v in row.items() if k not in ("run_status", "run_finished_at")}
                ),
                RunStatus(row["run_status"]),
                row["run_finished_at"],
            )
            for row in rows
        ]

    async def set_notes(self, session_id: uuid.UUID, notes: str) -> CaptureSession:
        row = await self._conn.fetchrow(_SET_NOTES, session_id, notes)
        return CaptureSession.model_validate(dict(row))

    async def archive_all(self, run_id: uuid.UUID) -> int:
        """Archives every session of the run; returns how many changed."""
        result = await self._conn.execute(_ARCHIVE_ALL, run_id)
        return int(result.split()[-1])

    async def delete(self, session_id: uuid.UUID) -> None:
        await self._conn.execute(_DELETE, session_id)
