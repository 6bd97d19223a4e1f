"""The tail of every mutation: its audit row and the webhook events it announces, written on
the mutation's own connection (same transaction), so a rolled-back change leaves neither and a
committed one both.

    await changes.record(conn, caller=caller, role=role, action="run.created", entity_type="run",
                         entry=changes.created(run), project_id=run.project_id,
                         events=[Event("run.created", run)])
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from backend_common.rbac import Caller, Role
from experiment_service.domain.webhooks import outbox
from experiment_service.domain.webhooks.outbox import Event
from experiment_service.repositories.audit import AuditRepository


class Entity(Protocol):
    """A domain model with an id: what audit rows are about."""

    @property
    def id(self) -> uuid.UUID: ...

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]: ...


@dataclass(frozen=True)
class Entry:
    """What an audit row says about its entity: how it was before and after the change."""

    entity_id: uuid.UUID
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def snapshot(entity: Entity) -> dict[str, Any]:
    return entity.model_dump(mode="json")


def created(entity: Entity) -> Entry:
    """A new entity: all of it."""
    return Entry(entity.id, after=snapshot(entity))


def changed(old: Entity, new: Entity) -> Entry:
    """Only the fields that changed (updated_at aside), as JSON values."""
    before, after = snapshot(old), snapshot(new)
    names = [name for name in after if name != "updated_at" and before.get(name) != after[name]]
    return Entry(
        new.id,
        before={name: before.get(name) for name in names},
        after={name: after[name] for name in names},
    )


def deleted(entity: Entity, details: dict[str, Any] | None = None) -> Entry:
    """A deleted entity: all of it, and `details` (e.g. what went with it)."""
    return Entry(entity.id, before={**snapshot(entity), **(details or {})})


async def record(
    conn: asyncpg.Connection,
    *,
    caller: Caller | None,
    role: Role | None,
    action: str,
    entity_type: str,
    entry: Entry,
    project_id: uuid.UUID,
    parent_id: uuid.UUID | None = None,
    events: Iterable[Event] = (),
    request_id: str | None = None,
) -> None:
    """The audit row of a change, then each of its events for the project's subscribers.

    A change the service makes by itself (a background job) has no caller and no role: its
    audit row and events have no actor, and `request_id` names the job (`job:<name>`)."""
    await AuditRepository(conn).insert(
        project_id=project_id,
        actor_id=None if caller is None else caller.user_id,
        actor_role=None if role is None else role.value,
        action=action,
        entity_type=entity_type,
        entity_id=entry.entity_id,
        parent_id=parent_id,
        before=entry.before,
        after=entry.after,
        request_id=request_id if caller is None else caller.request_id,
    )
    for event in events:
        await outbox.emit(
            conn,
            event_type=event.type,
            project_id=project_id,
            entity=event.entity,
            caller=caller,
            role=role,
            occurred_at=event.occurred_at,
        )
