"""Audit rows for every mutation, written on the mutation's own connection (same transaction)."""

import uuid
from typing import Any

import asyncpg
from pydantic import BaseModel

from backend_common.rbac import Caller, Role
from experiment_service.repositories.audit import AuditRepository


def snapshot(entity: BaseModel) -> dict[str, Any]:
    return entity.model_dump(mode="json")


def diff(before: BaseModel, after: BaseModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed (updated_at aside), as JSON values."""
    old, new = snapshot(before), snapshot(after)
    changed = [k for k in new if k != "updated_at" and old.get(k) != new[k]]
    return {k: old.get(k) for k in changed}, {k: new[k] for k in changed}


async def record(
    conn: asyncpg.Connection,
    *,
    caller: Caller,
    role: Role,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID,
    project_id: uuid.UUID,
    parent_id: uuid.UUID | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await AuditRepository(conn).insert(
        project_id=project_id,
        actor_id=caller.user_id,
        actor_role=role.value,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        parent_id=parent_id,
        before=before,
        after=after,
        request_id=caller.request_id,
    )


async def record_change(
    conn: asyncpg.Connection,
    *,
    caller: Caller,
    role: Role,
    action: str,
    entity_type: str,
    old: Any,
    new: Any,
    project_id: uuid.UUID,
    parent_id: uuid.UUID | None = None,
) -> None:
    """An audit row for an update: the changed fields before and after."""
    before, after = diff(old, new)
    await record(
        conn,
        caller=caller,
        role=role,
        action=action,
        entity_type=entity_type,
        entity_id=new.id,
        project_id=project_id,
        parent_id=parent_id,
        before=before,
        after=after,
    )
