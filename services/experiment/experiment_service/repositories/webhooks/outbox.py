"""The webhook outbox: events, their deliveries (claimed under a lease) and every attempt."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from backend_common.pagination import CursorKey, Page, PageRequest
from backend_common.sql import Query
from experiment_service.domain.webhooks.models import (
    ClaimedDelivery,
    WebhookAttempt,
    WebhookDelivery,
)
from experiment_service.repositories.cursor_keys import Instant

CHANNEL = "webhook_deliveries"
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"

# The event is written only when some active subscription of the project wants it, with one
# delivery per such subscription. KEY SHARE keeps a subscription being deleted from vanishing
# under the foreign key (the delete waits, or has happened and the row is skipped).
_INSERT_EVENT = """
    WITH targets AS (
        SELECT id FROM webhook_subscriptions
        WHERE project_id = $2 AND active AND ($3 = ANY (event_types) OR '*' = ANY (event_types))
        FOR KEY SHARE
    ), event AS (
        INSERT INTO webhook_events (id, project_id, type, payload, occurred_at)
        SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM targets)
        RETURNING id
    )
    INSERT INTO webhook_deliveries (event_id, subscription_id, project_id)
    SELECT event.id, targets.id, $2 FROM event CROSS JOIN targets
"""
# How many deliveries one event of each (project, type) would queue now: the active
# subscriptions of the project that want the type.
_SUBSCRIBERS = """
    SELECT p.project_id, t.type, count(*) AS subscribers
    FROM unnest($1::uuid[]) AS p (project_id)
    CROSS JOIN unnest($2::text[]) AS t (type)
    JOIN webhook_subscriptions s
      ON s.project_id = p.project_id AND s.active
         AND (t.type = ANY (s.event_types) OR '*' = ANY (s.event_types))
    GROUP BY p.project_id, t.type
"""
_INSERT_PING = """
    WITH event AS (
        INSERT INTO webhook_events (id, project_id, type, payload, occurred_at)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING id
    )
    INSERT INTO webhook_deliveries (event_id, subscription_id, project_id)
    SELECT event.id, $6, $2 FROM event
    RETURNING id
"""

_DUE = """
    ((d.status IN ('pending', 'failed') AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= $1))
     OR (d.status = 'delivering' AND d.lease_until <= $1))
"""
# Due deliveries of active subscriptions, oldest due first, at most $3 per subscription minus
# those this dispatcher is still sending ($4/$5), $2 in all. SKIP LOCKED passes over rows another
# dispatcher is claiming; the due test is repeated on the locked row's latest version, so a row
# claimed and committed meanwhile is not claimed twice.
_CLAIM = f"""
    WITH busy AS (
        SELECT * FROM unnest($4::uuid[], $5::int[]) AS b (subscription_id, sending)
    ), due AS (
        SELECT d.id, d.subscription_id, coalesce(d.next_attempt_at, d.created_at) AS due_at,
               row_number() OVER (PARTITION BY d.subscription_id
                                  ORDER BY coalesce(d.next_attempt_at, d.created_at), d.id) AS rank
        FROM webhook_deliveries d
        JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.active
        WHERE {_DUE}
    ), picked AS (
        SELECT due.id FROM due LEFT JOIN busy USING (subscription_id)
        WHERE due.rank <= $3 - coalesce(busy.sending, 0)
        ORDER BY due.due_at, due.id
        LIMIT $2
    ), locked AS (
        SELECT d.id FROM webhook_deliveries d JOIN picked USING (id)
        WHERE {_DUE}
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_deliveries d
    SET status = 'delivering', lease_token = gen_random_uuid(), lease_until = $1 + $6::interval,
        attempts = d.attempts + 1
    FROM locked, webhook_events e, webhook_subscriptions s
    WHERE d.id = locked.id AND e.id = d.event_id AND s.id = d.subscription_id
    RETURNING d.id, d.lease_token, d.attempts, e.id AS event_id, e.type AS event_type, e.payload,
              s.id AS subscription_id, s.target_url, s.secret, s.previous_secret,
              s.previous_secret_expires_at
"""
# Deliveries still to make for active subscriptions (those of a disabled one wait for it), and
# when the one due longest came due: its retry time, or its dead dispatcher's lease end.
_BACKLOG = f"""
    SELECT count(*) AS backlog,
           min(CASE WHEN d.status = 'delivering' THEN d.lease_until
                    ELSE coalesce(d.next_attempt_at, d.created_at) END)
               FILTER (WHERE {_DUE}) AS oldest_due
    FROM webhook_deliveries d
    JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.active
    WHERE d.status IN ('pending', 'failed', 'delivering')
"""
# Only the holder of the current lease records the outcome.
_FINISH = """
    UPDATE webhook_deliveries
    SET status = $3, next_attempt_at = $4, delivered_at = $5, last_status = $6, last_error = $7,
        last_attempt_at = $8, lease_token = NULL, lease_until = NULL
    WHERE id = $1 AND lease_token = $2
    RETURNING id
"""
_INSERT_ATTEMPT = """
    INSERT INTO webhook_attempts
        (delivery_id, attempt, started_at, status_code, error, latency_ms, response_body,
         superseded)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8
    WHERE EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = $1)
"""

DELIVERY_COLUMNS = (
    "d.id, d.event_id, e.type AS event_type, d.subscription_id, d.project_id, d.status,"
    " d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.last_attempt_at,"
    " d.delivered_at, d.created_at, d.updated_at, d.lease_until"
)
_ATTEMPTS = """
    SELECT delivery_id, attempt, started_at, status_code, error, latency_ms, response_body,
           superseded
    FROM webhook_attempts WHERE delivery_id = ANY ($1::uuid[]) ORDER BY delivery_id, id
"""
_MARK_ANNOUNCED = """
    INSERT INTO webhook_profile_activations (profile_id) VALUES ($1) ON CONFLICT DO NOTHING
"""
# Scheduled profiles whose start has passed and that nobody announced yet, marked announced; a
# dispatcher doing the same at once waits on the marker rows and gets none of them.
_CLAIM_ACTIVATIONS = """
    WITH due AS (
        INSERT INTO webhook_profile_activations (profile_id)
        SELECT p.id FROM conversion_profiles p
        WHERE p.valid_from <= $1
          AND NOT EXISTS (SELECT 1 FROM webhook_profile_activations a WHERE a.profile_id = p.id)
        ORDER BY p.valid_from
        LIMIT $2
        ON CONFLICT DO NOTHING
        RETURNING profile_id
    )
    SELECT due.profile_id, p.sensor_id, s.project_id,
           coalesce(NOT r.physical_only, false) AS raw_allowed
    FROM due
    JOIN conversion_profiles p ON p.id = due.profile_id
    JOIN sensors s ON s.id = p.sensor_id
    LEFT JOIN project_raw_policies r ON r.project_id = s.project_id
"""
_REDELIVER = """
    UPDATE webhook_deliveries
    SET status = 'pending', attempts = 0, next_attempt_at = NULL, lease_token = NULL,
        lease_until = NULL
    WHERE id = $1
"""


class DeliveryKey(CursorKey):
    """Cursor of a subscription's deliveries, newest first."""

    created_at: Instant
    id: uuid.UUID


class WebhookOutboxRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert_event(
        self,
        *,
        event_id: uuid.UUID,
        project_id: uuid.UUID,
        event_type: str,
        payload: dict[str, Any],
        occurred_at: datetime,
    ) -> int:
        """Fans the event out to the subscriptions that want it; the number of deliveries. The
        dispatchers are woken when the transaction commits."""
        status = await self._conn.execute(
            _INSERT_EVENT, event_id, project_id, event_type, payload, occurred_at
        )
        deliveries = int(status.split()[-1])
        if deliveries:
            await self._conn.execute(_NOTIFY)
        return deliveries

    async def subscribers(
        self, project_ids: list[uuid.UUID], event_types: list[str]
    ) -> dict[tuple[uuid.UUID, str], int]:
        """For each project and event type, the deliveries one such event would queue (pairs
        without any are left out)."""
        rows = await self._conn.fetch(_SUBSCRIBERS, project_ids, event_types)
        return {(row["project_id"], row["type"]): row["subscribers"] for row in rows}

    async def insert_ping(
        self,
        *,
        event_id: uuid.UUID,
        project_id: uuid.UUID,
        event_type: str,
        payload: dict[str, Any],
        occurred_at: datetime,
        subscription_id: uuid.UUID,
    ) -> uuid.UUID:
        delivery_id: uuid.UUID = await self._conn.fetchval(
            _INSERT_PING, event_id, project_id, event_type, payload, occurred_at, subscription_id
        )
        await self._conn.execute(_NOTIFY)
        return delivery_id

    async def find(
        self,
        subscription_id: uuid.UUID,
        *,
        statuses: tuple[str, ...] = (),
        event_type: str | None = None,
        page: PageRequest,
    ) -> Page[WebhookDelivery]:
        """Newest first, each with its attempts."""
        query = Query()
        query.where(f"d.subscription_id = {query.param(subscription_id)}")
        if statuses:
            query.where(f"d.status = ANY ({query.param(list(statuses))}::text[])")
        if event_type is not None:
            query.where(f"e.type = {query.param(event_type)}")
        before = page.after(DeliveryKey)
        if before is not None:
            query.where(
                f"(d.created_at, d.id) < ({query.param(before.created_at)},"
                f" {query.param(before.id)})"
            )
        rows = await self._conn.fetch(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d"
            f" JOIN webhook_events e ON e.id = d.event_id WHERE {query.where_sql}"
            f" ORDER BY d.created_at DESC, d.id DESC LIMIT {query.param(page.fetch)}",
            *query.params,
        )
        return page.page(
            await self._with_attempts(rows),
            key=lambda item: DeliveryKey(created_at=item.created_at, id=item.id),
        )

    async def get(
        self, delivery_id: uuid.UUID, *, lock: bool = False
    ) -> tuple[WebhookDelivery, datetime | None] | None:
        """The delivery and, while it is claimed, the end of the claim's lease."""
        row = await self._conn.fetchrow(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d"
            " JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1"
            + (" FOR UPDATE OF d" if lock else ""),
            delivery_id,
        )
        if row is None:
            return None
        (delivery,) = await self._with_attempts([row])
        return delivery, row["lease_until"]

    async def _with_attempts(self, rows: list[asyncpg.Record]) -> list[WebhookDelivery]:
        attempts: dict[uuid.UUID, list[WebhookAttempt]] = {row["id"]: [] for row in rows}
        if rows:
            for attempt in await self._conn.fetch(_ATTEMPTS, list(attempts)):
                attempts[attempt["delivery_id"]].append(
                    WebhookAttempt.model_validate(dict(attempt))
                )
        return [
            WebhookDelivery.model_validate({**dict(row), "attempt_log": attempts[row["id"]]})
            for row in rows
        ]

    async def mark_activation_announced(self, profile_id: uuid.UUID) -> None:
        await self._conn.execute(_MARK_ANNOUNCED, profile_id)

    async def claim_activations(
        self, *, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, bool]]:
        """(profile id, sensor id, the sensor's home project, whether that project's policy is
        known to allow raw values) of scheduled profiles that have become valid by `now` and
        were not announced yet; they count as announced from now on."""
        rows = await self._conn.fetch(_CLAIM_ACTIVATIONS, now, limit)
        return [
            (row["profile_id"], row["sensor_id"], row["project_id"], row["raw_allowed"])
            for row in rows
        ]

    async def redeliver(self, delivery_id: uuid.UUID) -> None:
        """Due again at once, with a fresh round of tries."""
        await self._conn.execute(_REDELIVER, delivery_id)
        await self._conn.execute(_NOTIFY)

    async def claim(
        self,
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
        per_target: int,
        sending: dict[uuid.UUID, int],
    ) -> list[ClaimedDelivery]:
        rows = await self._conn.fetch(
            _CLAIM,
            now,
            limit,
            per_target,
            list(sending),
            list(sending.values()),
            lease,
        )
        return [_claimed(row, now) for row in rows]

    async def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """Deliveries not yet made (active subscriptions), and since when the longest-due one
        has been due (None: nothing is due at `now`)."""
        row = await self._conn.fetchrow(_BACKLOG, now)
        assert row is not None
        backlog: int = row["backlog"]
        oldest_due: datetime | None = row["oldest_due"]
        return backlog, oldest_due

    async def finish(
        self,
        delivery_id: uuid.UUID,
        lease_token: uuid.UUID,
        *,
        status: str,
        next_attempt_at: datetime | None,
        delivered_at: datetime | None,
        last_status: int | None,
        last_error: str | None,
        attempted_at: datetime,
    ) -> bool:
        """Records the outcome if the lease is still this claimer's; False if it was lost."""
        updated = await self._conn.fetchval(
            _FINISH,
            delivery_id,
            lease_token,
            status,
            next_attempt_at,
            delivered_at,
            last_status,
            last_error,
            attempted_at,
        )
        return updated is not None

    async def log_attempt(
        self,
        delivery_id: uuid.UUID,
        *,
        attempt: int,
        started_at: datetime,
        status_code: int | None,
        error: str | None,
        latency_ms: int,
        response_body: str | None,
        superseded: bool,
    ) -> None:
        await self._conn.execute(
            _INSERT_ATTEMPT,
            delivery_id,
            attempt,
            started_at,
            status_code,
            error,
            latency_ms,
            response_body,
            superseded,
        )


def _claimed(row: asyncpg.Record, now: datetime) -> ClaimedDelivery:
    secrets = [row["secret"]]
    expires = row["previous_secret_expires_at"]
    if row["previous_secret"] is not None and expires is not None and expires > now:
        secrets.append(row["previous_secret"])
    return ClaimedDelivery(
        id=row["id"],
        lease_token=row["lease_token"],
        attempt=row["attempts"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        payload=row["payload"],
        subscription_id=row["subscription_id"],
        target_url=row["target_url"],
        secrets=secrets,
    )
