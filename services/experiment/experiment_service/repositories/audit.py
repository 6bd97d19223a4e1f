import uuid
from datetime import datetime
from typing import Any

import asyncpg

from backend_common.pagination import CursorKey, Page, PageRequest
from backend_common.sql import Query
from experiment_service.domain.models import AuditEntry
from experiment_service.repositories.cursor_keys import BigId

COLUMNS = (
    "id, project_id, actor_id, actor_role, action, entity_type, entity_id, parent_id, before,"
    " after, request_id, at"
)
_FIRST_OF = f"SELECT {COLUMNS} FROM audit_log WHERE entity_id = $1 ORDER BY id LIMIT 1"
_INSERT = """
    INSERT INTO audit_log (project_id, actor_id, actor_role, action, entity_type, entity_id,
                           parent_id, before, after, request_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""


class AuditKey(CursorKey):
    """Cursor of the audit log, oldest first: the last entry's id."""

    id: BigId


class AuditRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(
        self,
        *,
        project_id: uuid.UUID,
        actor_id: uuid.UUID | None,
        actor_role: str | None,
        action: str,
        entity_type: str,
        entity_id: uuid.UUID,
        parent_id: uuid.UUID | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        request_id: str | None,
    ) -> None:
        await self._conn.execute(
            _INSERT,
            project_id,
            actor_id,
            actor_role,
            action,
            entity_type,
            entity_id,
            parent_id,
            before,
            after,
            request_id,
        )

    async def find(
        self,
        *,
        project_id: uuid.UUID | None = None,
        entity_id: uuid.UUID | None = None,
        related_to: uuid.UUID | None = None,
        entity_type: str | None = None,
        action: str | None = None,
        actor_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: PageRequest,
    ) -> Page[AuditEntry]:
        """Oldest first. `related_to` matches an entity and everything whose parent it is."""
        query = Query()
        if project_id is not None:
            query.where(f"project_id = {query.param(project_id)}")
        if entity_id is not None:
            query.where(f"entity_id = {query.param(entity_id)}")
        if related_to is not None:
            param = query.param(related_to)
            query.where(f"(entity_id = {param} OR parent_id = {param})")
        if entity_type is not None:
            query.where(f"entity_type = {query.param(entity_type)}")
        if action is not None:
            query.where(f"action = {query.param(action)}")
        if actor_id is not None:
            query.where(f"actor_id = {query.param(actor_id)}")
        if since is not None:
            query.where(f"at >= {query.param(since)}")
        if until is not None:
            query.where(f"at < {query.param(until)}")
        after = page.after(AuditKey)
        if after is not None:
            query.where(f"id > {query.param(after.id)}")
        rows = await self._conn.fetch(
            f"SELECT {COLUMNS} FROM audit_log WHERE {query.where_sql} "
            f"ORDER BY id LIMIT {query.param(page.fetch)}",
            *query.params,
        )
        return page.page(
            [AuditEntry.model_validate(dict(row)) for row in rows],
            key=lambda entry: AuditKey(id=entry.id),
        )

    async def first_of(self, entity_id: uuid.UUID) -> AuditEntry | None:
        """The oldest entry about the entity."""
        row = await self._conn.fetchrow(_FIRST_OF, entity_id)
        return None if row is None else AuditEntry.model_validate(dict(row))
