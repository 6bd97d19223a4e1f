"""Reading the audit log: a run's events, a capture session's, a project's."""

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from backend_common.db import Database
from backend_common.pagination import page_of, parse_cursor
from backend_common.rbac import Caller, Role
from experiment_service.domain.errors import CaptureSessionNotFound, RunNotFound
from experiment_service.domain.models import AuditEntry
from experiment_service.repositories.audit import AuditRepository
from experiment_service.repositories.capture_sessions import CaptureSessionRepository
from experiment_service.repositories.runs import RunRepository


class _AuditKey(BaseModel):
    id: int = Field(ge=0, le=2**63 - 1)


def _after_id(cursor: str | None) -> int | None:
    return parse_cursor(cursor, _AuditKey).id if cursor else None


def _page(rows: list[AuditEntry], limit: int) -> tuple[list[AuditEntry], str | None]:
    return page_of(rows, limit=limit, key=lambda entry: {"id": entry.id})


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def run_events(
        self, caller: Caller, run_id: uuid.UUID, *, cursor: str | None, limit: int
    ) -> tuple[list[AuditEntry], str | None]:
        """The run's own entries and those of its capture sessions, oldest first."""
        async with self._db.connection() as conn:
            run = await RunRepository(conn).get(run_id)
            if run is None:
                raise RunNotFound()
            await caller.require(run.project_id, Role.VIEWER, not_found=RunNotFound)
            rows = await AuditRepository(conn).find(
                related_to=run_id, after_id=_after_id(cursor), limit=limit + 1
            )
        return _page(rows, limit)

    async def capture_session_events(
        self,
        caller: Caller,
        run_id: uuid.UUID,
        session_id: uuid.UUID,
        *,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[AuditEntry], str | None]:
        async with self._db.connection() as conn:
            run = await RunRepository(conn).get(run_id)
            if run is None:
                raise RunNotFound()
            await caller.require(run.project_id, Role.VIEWER, not_found=RunNotFound)
            if await CaptureSessionRepository(conn).get(session_id, run_id) is None:
                # A deleted session keeps its history; an id that never was here has none.
                rows = await AuditRepository(conn).find(
                    entity_id=session_id, after_id=None, limit=1
                )
                if not rows or rows[0].parent_id != run_id:
                    raise CaptureSessionNotFound()
            rows = await AuditRepository(conn).find(
                entity_id=session_id, after_id=_after_id(cursor), limit=limit + 1
            )
        return _page(rows, limit)

    async def project_entries(
        self,
        caller: Caller,
        project_id: uuid.UUID,
        *,
        entity_type: str | None,
        entity_id: uuid.UUID | None,
        action: str | None,
        actor_id: uuid.UUID | None,
        since: datetime | None,
        until: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[AuditEntry], str | None]:
        await caller.require(project_id, Role.VIEWER)
        async with self._db.connection() as conn:
            rows = await AuditRepository(conn).find(
                project_id=project_id,
                entity_type=entity_type,
                entity_id=entity_id,
                action=action,
                actor_id=actor_id,
                since=since,
                until=until,
                after_id=_after_id(cursor),
                limit=limit + 1,
            )
        return _page(rows, limit)
