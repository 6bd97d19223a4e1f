"""Reading the audit log: a run's events, a capture session's, a project's. Entries show their
entities as the reader may see them (domain.visibility)."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from backend_common.db import Database
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller, Role
from experiment_service.domain import visibility
from experiment_service.domain.errors import CaptureSessionNotFound, RunNotFound
from experiment_service.domain.models import AuditEntry
from experiment_service.repositories.audit import AuditRepository
from experiment_service.repositories.capture_sessions import CaptureSessionRepository
from experiment_service.repositories.runs import RunRepository


@dataclass(frozen=True)
class AuditFilter:
    """Which entries of a project's log to list; None matches anything."""

    project_id: uuid.UUID
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None
    action: str | None = None
    actor_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def run_events(
        self, caller: Caller, run_id: uuid.UUID, page: PageRequest
    ) -> Page[AuditEntry]:
        """The run's own entries and those of its capture sessions, oldest first."""
        async with self._db.connection() as conn:
            run = await RunRepository(conn).get(run_id)
            if run is None:
                raise RunNotFound()
            seen_by = await visibility.required(
                caller, run.project_id, Role.VIEWER, not_found=RunNotFound
            )
            found = await AuditRepository(conn).find(related_to=run_id, page=page)
        return _shown(found, seen_by)

    async def capture_session_events(
        self, caller: Caller, run_id: uuid.UUID, session_id: uuid.UUID, page: PageRequest
    ) -> Page[AuditEntry]:
        async with self._db.connection() as conn:
            run = await RunRepository(conn).get(run_id)
            if run is None:
                raise RunNotFound()
            seen_by = await visibility.required(
                caller, run.project_id, Role.VIEWER, not_found=RunNotFound
            )
            audit = AuditRepository(conn)
            if await CaptureSessionRepository(conn).get(session_id, run_id) is None:
                # A deleted session keeps its history; an id that never was here has none.
                first = await audit.first_of(session_id)
                if first is None or first.parent_id != run_id:
                    raise CaptureSessionNotFound()
            found = await audit.find(entity_id=session_id, page=page)
        return _shown(found, seen_by)

    async def project_entries(
        self, caller: Caller, flt: AuditFilter, page: PageRequest
    ) -> Page[AuditEntry]:
        seen_by = await visibility.required(caller, flt.project_id, Role.VIEWER)
        async with self._db.connection() as conn:
            found = await AuditRepository(conn).find(
                project_id=flt.project_id,
                entity_type=flt.entity_type,
                entity_id=flt.entity_id,
                action=flt.action,
                actor_id=flt.actor_id,
                since=flt.since,
                until=flt.until,
                page=page,
            )
        return _shown(found, seen_by)


def _shown(page: Page[AuditEntry], seen_by: visibility.Visibility) -> Page[AuditEntry]:
    return page.map(lambda entry: visibility.audit_entry(entry, seen_by))
