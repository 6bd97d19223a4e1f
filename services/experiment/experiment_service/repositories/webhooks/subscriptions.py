import uuid
from datetime import datetime

import asyncpg

from backend_common.pagination import CursorKey, Page, PageRequest
from backend_common.sql import Query
from experiment_service.domain.webhooks.models import WebhookSubscription
from experiment_service.models import WebhookUpdate
from experiment_service.repositories.cursor_keys import Instant

COLUMNS = (
    "id, project_id, target_url, event_types, active, disabled_reason, description,"
    " previous_secret_expires_at, created_by, created_at, updated_at"
)
# Fields a PATCH may set; the keys are also the column names.
PATCHABLE = ("target_url", "event_types", "active", "description", "disabled_reason")

# Serialises the creates of one project's subscriptions until the transaction ends, so the
# count below sees every subscription committed before (a statement's snapshot is taken when
# it starts: the count must be a statement after the lock, not part of the same one).
_LOCK_PROJECT = "SELECT pg_advisory_xact_lock(hashtextextended('webhook_subscriptions:' || $1, 0))"
# Inserts only while the project has fewer than $8 subscriptions.
_INSERT = f"""
    INSERT INTO webhook_subscriptions
        (project_id, target_url, event_types, active, description, secret, created_by)
    SELECT $1, $2, $3, $4, $5, $6, $7
    WHERE (SELECT count(*) FROM webhook_subscriptions WHERE project_id = $1) < $8
    RETURNING {COLUMNS}
"""
_GET = f"SELECT {COLUMNS} FROM webhook_subscriptions WHERE id = $1"
_ROTATE = f"""
    UPDATE webhook_subscriptions
    SET previous_secret = CASE WHEN $3::timestamptz IS NULL THEN NULL ELSE secret END,
        previous_secret_expires_at = $3, secret = $2
    WHERE id = $1
    RETURNING {COLUMNS}
"""
_DELETE = "DELETE FROM webhook_subscriptions WHERE id = $1"
_DISABLE = """
    UPDATE webhook_subscriptions SET active = false, disabled_reason = $2 WHERE id = $1
"""


class SubscriptionKey(CursorKey):
    """Cursor of a project's subscriptions, oldest first."""

    created_at: Instant
    id: uuid.UUID


class WebhookSubscriptionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(
        self,
        *,
        project_id: uuid.UUID,
        target_url: str,
        event_types: list[str],
        active: bool,
        description: str,
        secret: str,
        created_by: uuid.UUID,
        limit: int,
    ) -> WebhookSubscription | None:
        """None when the project already has `limit` subscriptions. Needs a transaction."""
        await self._conn.execute(_LOCK_PROJECT, str(project_id))
        row = await self._conn.fetchrow(
            _INSERT,
            project_id,
            target_url,
            event_types,
            active,
            description,
            secret,
            created_by,
            limit,
        )
        return None if row is None else WebhookSubscription.model_validate(dict(row))

    async def get(
        self, subscription_id: uuid.UUID, *, lock: bool = False
    ) -> WebhookSubscription | None:
        row = await self._conn.fetchrow(_GET + (" FOR UPDATE" if lock else ""), subscription_id)
        return None if row is None else WebhookSubscription.model_validate(dict(row))

    async def find(self, project_id: uuid.UUID, page: PageRequest) -> Page[WebhookSubscription]:
        """Oldest first."""
        query = Query()
        query.where(f"project_id = {query.param(project_id)}")
        after = page.after(SubscriptionKey)
        if after is not None:
            query.where(
                f"(created_at, id) > ({query.param(after.created_at)}, {query.param(after.id)})"
            )
        rows = await self._conn.fetch(
            f"SELECT {COLUMNS} FROM webhook_subscriptions WHERE {query.where_sql}"
            f" ORDER BY created_at, id LIMIT {query.param(page.fetch)}",
            *query.params,
        )
        return page.page(
            [WebhookSubscription.model_validate(dict(row)) for row in rows],
            key=lambda item: SubscriptionKey(created_at=item.created_at, id=item.id),
        )

    async def update(
        self, subscription_id: uuid.UUID, patch: WebhookUpdate, *, clear_disabled_reason: bool
    ) -> WebhookSubscription:
        changes: dict[str, object] = patch.changes()
        if clear_disabled_reason:
            changes["disabled_reason"] = None
        query = Query()
        assignments = query.assignments(changes, PATCHABLE)
        row = await self._conn.fetchrow(
            f"UPDATE webhook_subscriptions SET {assignments}"
            f" WHERE id = {query.param(subscription_id)} RETURNING {COLUMNS}",
            *query.params,
        )
        return WebhookSubscription.model_validate(dict(row))

    async def rotate_secret(
        self, subscription_id: uuid.UUID, *, secret: str, previous_until: datetime | None
    ) -> WebhookSubscription:
        """The new secret signs from now on; the old one too until `previous_until` (if any)."""
        row = await self._conn.fetchrow(_ROTATE, subscription_id, secret, previous_until)
        return WebhookSubscription.model_validate(dict(row))

    async def delete(self, subscription_id: uuid.UUID) -> None:
        await self._conn.execute(_DELETE, subscription_id)

    async def disable(self, subscription_id: uuid.UUID, *, reason: str) -> None:
        await self._conn.execute(_DISABLE, subscription_id, reason)
