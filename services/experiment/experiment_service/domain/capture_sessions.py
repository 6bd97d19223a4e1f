"""Capture sessions ("start/stop capture") inside a run."""

import uuid
from datetime import UTC, datetime

from backend_common.db import Database
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller, Role
from backend_common.statuses import CaptureStatus, RunStatus
from experiment_service.domain import changes
from experiment_service.domain.access import locked_run, run_access, run_role
from experiment_service.domain.errors import (
    CaptureAlreadyRunning,
    CaptureNotDeletable,
    CaptureNotRunning,
    CaptureSessionNotFound,
    RunNotRunning,
)
from experiment_service.domain.models import CaptureSession
from experiment_service.domain.transitions import CAPTURE_DELETABLE
from experiment_service.domain.webhooks.outbox import Event
from experiment_service.repositories.capture_sessions import CaptureSessionRepository
from experiment_service.repositories.run_sensors import RunSensorRepository

ENTITY = "capture_session"


class CaptureSessions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(
        self,
        caller: Caller,
        run_id: uuid.UUID,
        *,
        notes: str,
        duration_seconds: int | None = None,
    ) -> CaptureSession:
        """A running session; with `duration_seconds` it stops itself then (the capture upkeep
        job stops it, dated at its planned stop)."""
        _, role = await run_role(self._db, caller, run_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            # The run's row lock serialises starts: one running session, gap-free ordinals.
            run = await locked_run(conn, run_id, "update")
            if run.status != RunStatus.RUNNING:
                raise RunNotRunning(
                    f"Capture starts only in a running run; this one is {run.status}."
                )
            sessions = CaptureSessionRepository(conn)
            if await sessions.has_running(run_id):
                raise CaptureAlreadyRunning()
            # A sensor being deleted waits, or sees this capture and refuses.
            await RunSensorRepository(conn).lock_sensors_of_run(run_id)
            session = await sessions.insert_running(
                run_id=run_id,
                project_id=run.project_id,
                initiated_by=caller.user_id,
                notes=notes,
                duration_seconds=duration_seconds,
            )
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="capture_session.started",
                entity_type=ENTITY,
                entry=changes.created(session),
                project_id=session.project_id,
                parent_id=run_id,
                events=[Event("capture_session.started", session)],
            )
        return session

    async def stop(
        self,
        caller: Caller,
        run_id: uuid.UUID,
        session_id: uuid.UUID,
        *,
        status: CaptureStatus,
        reason: str | None,
    ) -> CaptureSession:
        _, role = await run_role(self._db, caller, run_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            await locked_run(conn, run_id, "update")
            sessions = CaptureSessionRepository(conn)
            current = await self._session(sessions, session_id, run_id)
            if current.status != CaptureStatus.RUNNING:
                raise CaptureNotRunning(f"This capture session is {current.status}.")
            stopped = await sessions.stop(
                session_id, status=status, stopped_at=datetime.now(UTC), failure_reason=reason
            )
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="capture_session.stopped",
                entity_type=ENTITY,
                entry=changes.changed(current, stopped),
                project_id=stopped.project_id,
                parent_id=run_id,
                events=[Event("capture_session.stopped", stopped)],
            )
        return stopped

    async def get(self, caller: Caller, run_id: uuid.UUID, session_id: uuid.UUID) -> CaptureSession:
        async with self._db.connection() as conn:
            await run_access(conn, caller, run_id, Role.VIEWER)
            return await self._session(CaptureSessionRepository(conn), session_id, run_id)

    async def list_page(
        self, caller: Caller, run_id: uuid.UUID, page: PageRequest
    ) -> Page[CaptureSession]:
        async with self._db.connection() as conn:
            await run_access(conn, caller, run_id, Role.VIEWER)
            return await CaptureSessionRepository(conn).find(run_id, page)

    async def update_notes(
        self, caller: Caller, run_id: uuid.UUID, session_id: uuid.UUID, *, notes: str
    ) -> CaptureSession:
        _, role = await run_role(self._db, caller, run_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            sessions = CaptureSessionRepository(conn)
            current = await self._session(sessions, session_id, run_id, lock=True)
            updated = await sessions.set_notes(session_id, notes)
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="capture_session.updated",
                entity_type=ENTITY,
                entry=changes.changed(current, updated),
                project_id=updated.project_id,
                parent_id=run_id,
            )
        return updated

    async def delete(self, caller: Caller, run_id: uuid.UUID, session_id: uuid.UUID) -> None:
        _, role = await run_role(self._db, caller, run_id, Role.OWNER)
        async with self._db.transaction() as conn:
            await locked_run(conn, run_id, "update")
            sessions = CaptureSessionRepository(conn)
            current = await self._session(sessions, session_id, run_id, lock=True)
            if current.status not in CAPTURE_DELETABLE:
                raise CaptureNotDeletable(f"This capture session is {current.status}.")
            await sessions.delete(session_id)
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="capture_session.deleted",
                entity_type=ENTITY,
                entry=changes.deleted(current),
                project_id=current.project_id,
                parent_id=run_id,
            )

    @staticmethod
    async def _session(
        sessions: CaptureSessionRepository,
        session_id: uuid.UUID,
        run_id: uuid.UUID,
        *,
        lock: bool = False,
    ) -> CaptureSession:
        session = await sessions.get(session_id, run_id, for_update=lock)
        if session is None:
            raise CaptureSessionNotFound()
        return session
