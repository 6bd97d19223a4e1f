"""Webhook events, written on the mutation's own connection (same transaction) as its audit row:
a rolled-back change announces nothing and a committed one is never lost."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import BaseModel

from backend_common.rbac import Caller, Role
from experiment_service.domain import visibility
from experiment_service.domain.errors import WebhookFanOutLimit
from experiment_service.domain.models import ConversionProfile
from experiment_service.domain.webhooks.policy import EVENT_TYPES, PING
from experiment_service.repositories.conversion_profiles import ConversionProfileRepository
from experiment_service.repositories.project_policies import ProjectPolicyRepository
from experiment_service.repositories.webhooks.outbox import WebhookOutboxRepository

ACTIVATED = "conversion_profile.activated"


@dataclass(frozen=True)
class Event:
    """A webhook event about `entity` (as the API shows it), at `occurred_at` (default: now)."""

    type: str
    entity: BaseModel
    occurred_at: datetime | None = None


async def check_fan_out(
    conn: asyncpg.Connection, events: Sequence[tuple[uuid.UUID, str]], *, limit: int
) -> None:
    """Refuses a change whose events, given as (project, event type), would queue more than
    `limit` webhook deliveries in all (WebhookFanOutLimit); run before the change is written."""
    if not events:
        return
    subscribers = await WebhookOutboxRepository(conn).subscribers(
        sorted({project_id for project_id, _ in events}), sorted({type_ for _, type_ in events})
    )
    deliveries = sum(subscribers.get(event, 0) for event in events)
    if deliveries > limit:
        raise WebhookFanOutLimit(
            f"This change would queue {deliveries} webhook deliveries; one change may queue at"
            f" most {limit}. Change fewer items at once."
        )


def envelope(
    *,
    event_id: uuid.UUID,
    event_type: str,
    occurred_at: datetime,
    project_id: uuid.UUID,
    data: dict[str, Any],
    actor: dict[str, Any] | None,
) -> dict[str, Any]:
    """The body receivers get."""
    return {
        "id": str(event_id),
        "type": event_type,
        "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "project_id": str(project_id),
        "actor": actor,
        "data": data,
    }


async def emit(
    conn: asyncpg.Connection,
    *,
    event_type: str,
    project_id: uuid.UUID,
    entity: BaseModel,
    caller: Caller | None,
    role: Role | None,
    occurred_at: datetime | None = None,
) -> None:
    """Queues `event_type` about `entity` (as the API shows it) for the project's subscribers."""
    assert event_type in EVENT_TYPES, event_type
    event_id = uuid.uuid4()
    occurred_at = occurred_at or datetime.now(UTC)
    actor = None
    if caller is not None:
        actor = {"user_id": str(caller.user_id), "role": None if role is None else role.value}
    await WebhookOutboxRepository(conn).insert_event(
        event_id=event_id,
        project_id=project_id,
        event_type=event_type,
        payload=envelope(
            event_id=event_id,
            event_type=event_type,
            occurred_at=occurred_at,
            project_id=project_id,
            data=entity.model_dump(mode="json"),
            actor=actor,
        ),
        occurred_at=occurred_at,
    )


async def learn_policy(
    conn: asyncpg.Connection, project_id: uuid.UUID, *, physical_only: bool
) -> None:
    """Keeps the project's raw-value policy (from a member's answer) for announcements that
    no member makes: the sweep below."""
    await ProjectPolicyRepository(conn).learn(project_id, physical_only=physical_only)


async def profile_activated(
    conn: asyncpg.Connection,
    profile: ConversionProfile,
    project_id: uuid.UUID,
    *,
    physical_only: bool,
) -> Event:
    """`conversion_profile.activated` for a profile valid from now on (published), at its start,
    without its payload under a `physical_only` policy of the sensor's home project `project_id`
    (the payload recovers raw values); the scheduled-activation sweep will not announce it
    again."""
    await learn_policy(conn, project_id, physical_only=physical_only)
    await WebhookOutboxRepository(conn).mark_activation_announced(profile.id)
    shown = visibility.profile(profile, sees_raw=not physical_only)
    return Event(ACTIVATED, shown, profile.valid_from)


async def announce_scheduled_activations(
    conn: asyncpg.Connection, *, now: datetime, limit: int = 100
) -> int:
    """`conversion_profile.activated` for profiles scheduled ahead whose start has passed by
    `now` (they become active by time alone, so no request announces them). There is no actor,
    so the payload is left out unless the project's policy, as last learned, allows raw values.
    Returns how many were announced."""
    due = await WebhookOutboxRepository(conn).claim_activations(now=now, limit=limit)
    profiles = ConversionProfileRepository(conn)
    for profile_id, sensor_id, project_id, raw_allowed in due:
        profile = await profiles.get(sensor_id, profile_id, now)
        assert profile is not None
        await emit(
            conn,
            event_type=ACTIVATED,
            project_id=project_id,
            entity=visibility.profile(profile, sees_raw=raw_allowed),
            caller=None,
            role=None,
            occurred_at=profile.valid_from,
        )
    return len(due)


async def emit_ping(
    conn: asyncpg.Connection,
    *,
    subscription_id: uuid.UUID,
    project_id: uuid.UUID,
    caller: Caller,
    role: Role,
    occurred_at: datetime,
) -> tuple[uuid.UUID, uuid.UUID]:
    """A test event for one subscription; its event id and delivery id."""
    event_id = uuid.uuid4()
    delivery_id = await WebhookOutboxRepository(conn).insert_ping(
        event_id=event_id,
        project_id=project_id,
        event_type=PING,
        payload=envelope(
            event_id=event_id,
            event_type=PING,
            occurred_at=occurred_at,
            project_id=project_id,
            data={"subscription_id": str(subscription_id)},
            actor={"user_id": str(caller.user_id), "role": role.value},
        ),
        occurred_at=occurred_at,
        subscription_id=subscription_id,
    )
    return event_id, delivery_id


async def backlog(conn: asyncpg.Connection, *, now: datetime) -> tuple[int, timedelta]:
    """Deliveries still to make, and how long the one due longest has waited (zero when none
    is due): the dispatchers keep it near zero unless they are down or stuck."""
    pending, oldest_due = await WebhookOutboxRepository(conn).backlog(now)
    if oldest_due is None:
        return pending, timedelta(0)
    return pending, max(timedelta(0), now - oldest_due)
