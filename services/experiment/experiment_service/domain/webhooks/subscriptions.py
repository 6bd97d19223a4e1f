"""Webhook subscriptions of a project, their deliveries, redelivery and test pings.

Any member reads; `editor` and up creates and changes them. A subscription of a project the
caller is not a member of does not exist for them.
"""

import uuid
from datetime import timedelta

from backend_common.clock import Clock
from backend_common.db import Database
from backend_common.pagination import Page, PageRequest
from backend_common.ratelimit import TokenBuckets
from backend_common.rbac import Caller, Role
from experiment_service.domain import changes, visibility
from experiment_service.domain.errors import (
    DeliveryInProgress,
    PingRateLimited,
    WebhookDeliveryNotFound,
    WebhookInactive,
    WebhookLimit,
    WebhookNotFound,
)
from experiment_service.domain.webhooks import outbox
from experiment_service.domain.webhooks.models import (
    WebhookDelivery,
    WebhookSubscription,
    WebhookSubscriptionWithSecret,
)
from experiment_service.domain.webhooks.policy import DeliveryStatus
from experiment_service.domain.webhooks.signing import new_secret
from experiment_service.domain.webhooks.targets import TargetGuard
from experiment_service.models import WebhookCreate, WebhookUpdate
from experiment_service.repositories.webhooks.outbox import WebhookOutboxRepository
from experiment_service.repositories.webhooks.subscriptions import WebhookSubscriptionRepository

ENTITY = "webhook"


class Webhooks:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        guard: TargetGuard,
        *,
        max_subscriptions: int,
        pings: TokenBuckets | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._guard = guard
        self._max_subscriptions = max_subscriptions
        self._pings = pings

    async def create(self, caller: Caller, data: WebhookCreate) -> WebhookSubscriptionWithSecret:
        role = await caller.require(data.project_id, Role.EDITOR)
        await self._guard.check_url(data.target_url)
        secret = new_secret()
        async with self._db.transaction() as conn:
            subscription = await WebhookSubscriptionRepository(conn).insert(
                project_id=data.project_id,
                target_url=data.target_url,
                event_types=data.event_types,
                active=data.active,
                description=data.description,
                secret=secret,
                created_by=caller.user_id,
                limit=self._max_subscriptions,
            )
            if subscription is None:
                raise WebhookLimit(
                    f"A project has at most {self._max_subscriptions} webhook subscriptions."
                )
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="webhook.created",
                entity_type=ENTITY,
                entry=changes.created(subscription),
                project_id=subscription.project_id,
            )
        return WebhookSubscriptionWithSecret(**subscription.model_dump(), secret=secret)

    async def get(self, caller: Caller, subscription_id: uuid.UUID) -> WebhookSubscription:
        """The subscription; a viewer sees only the outline of its target."""
        subscription, role = await self._access(caller, subscription_id, Role.VIEWER)
        return visibility.subscription(subscription, visibility.Visibility(role))

    async def list_page(
        self, caller: Caller, project_id: uuid.UUID, page: PageRequest
    ) -> Page[WebhookSubscription]:
        seen_by = visibility.Visibility(await caller.require(project_id, Role.VIEWER))
        async with self._db.connection() as conn:
            found = await WebhookSubscriptionRepository(conn).find(project_id, page)
        return found.map(lambda item: visibility.subscription(item, seen_by))

    async def update(
        self, caller: Caller, subscription_id: uuid.UUID, patch: WebhookUpdate
    ) -> WebhookSubscription:
        _, role = await self._access(caller, subscription_id, Role.EDITOR)
        if patch.target_url is not None:
            # Resolved before the transaction, so a slow DNS answer holds no row lock; only for
            # someone who may change the subscription.
            await self._guard.check_url(patch.target_url)
        async with self._db.transaction() as conn:
            subscriptions = WebhookSubscriptionRepository(conn)
            current = await self._locked(subscriptions, subscription_id)
            # Activating a subscription forgets why it was disabled.
            updated = await subscriptions.update(
                subscription_id, patch, clear_disabled_reason=patch.active is True
            )
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="webhook.updated",
                entity_type=ENTITY,
                entry=changes.changed(current, updated),
                project_id=updated.project_id,
            )
        return updated

    async def delete(self, caller: Caller, subscription_id: uuid.UUID) -> None:
        """Deletes the subscription with its deliveries and their attempts."""
        _, role = await self._access(caller, subscription_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            subscriptions = WebhookSubscriptionRepository(conn)
            current = await self._locked(subscriptions, subscription_id)
            await subscriptions.delete(subscription_id)
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="webhook.deleted",
                entity_type=ENTITY,
                entry=changes.deleted(current),
                project_id=current.project_id,
            )

    async def rotate_secret(
        self, caller: Caller, subscription_id: uuid.UUID, *, grace: timedelta
    ) -> WebhookSubscriptionWithSecret:
        """A new secret; the old one stops signing now, or at the end of the grace period."""
        secret = new_secret()
        _, role = await self._access(caller, subscription_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            subscriptions = WebhookSubscriptionRepository(conn)
            await self._locked(subscriptions, subscription_id)
            previous_until = self._clock() + grace if grace > timedelta(0) else None
            rotated = await subscriptions.rotate_secret(
                subscription_id, secret=secret, previous_until=previous_until
            )
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="webhook.secret_rotated",
                entity_type=ENTITY,
                entry=changes.Entry(
                    rotated.id, after={"grace_seconds": int(grace.total_seconds())}
                ),
                project_id=rotated.project_id,
            )
        return WebhookSubscriptionWithSecret(**rotated.model_dump(), secret=secret)

    async def ping(self, caller: Caller, subscription_id: uuid.UUID) -> WebhookDelivery:
        """Queues a `webhook.ping` event for this subscription alone; rate-limited per
        subscription, so pings cannot be turned into a flood of the receiver."""
        subscription, role = await self._access(caller, subscription_id, Role.EDITOR)
        if self._pings is not None:
            decision = self._pings.take(str(subscription.id))
            if not decision.allowed:
                raise PingRateLimited(decision)
        async with self._db.transaction() as conn:
            if not subscription.active:
                raise WebhookInactive()
            _, delivery_id = await outbox.emit_ping(
                conn,
                subscription_id=subscription.id,
                project_id=subscription.project_id,
                caller=caller,
                role=role,
                occurred_at=self._clock(),
            )
            found = await WebhookOutboxRepository(conn).get(delivery_id)
        assert found is not None
        return found[0]

    async def deliveries(
        self,
        caller: Caller,
        subscription_id: uuid.UUID,
        *,
        statuses: tuple[str, ...],
        event_type: str | None,
        page: PageRequest,
    ) -> Page[WebhookDelivery]:
        """Newest first, with their tries; a viewer does not see what receivers answered."""
        _, role = await self._access(caller, subscription_id, Role.VIEWER)
        async with self._db.connection() as conn:
            found = await WebhookOutboxRepository(conn).find(
                subscription_id,
                statuses=statuses,
                event_type=event_type,
                page=page,
            )
        seen_by = visibility.Visibility(role)
        return found.map(lambda item: visibility.delivery(item, seen_by))

    async def redeliver(self, caller: Caller, delivery_id: uuid.UUID) -> WebhookDelivery:
        """Sends the delivery again (same event, same `webhook-id`) with a fresh round of tries."""
        async with self._db.connection() as conn:
            seen = await WebhookOutboxRepository(conn).get(delivery_id)
        if seen is None:
            raise WebhookDeliveryNotFound()
        role = await caller.require(
            seen[0].project_id, Role.EDITOR, not_found=WebhookDeliveryNotFound
        )
        async with self._db.transaction() as conn:
            deliveries = WebhookOutboxRepository(conn)
            found = await deliveries.get(delivery_id, lock=True)
            if found is None:
                raise WebhookDeliveryNotFound()
            delivery, lease_until = found
            subscription = await WebhookSubscriptionRepository(conn).get(delivery.subscription_id)
            assert subscription is not None  # deleting it deletes its deliveries
            if not subscription.active:
                raise WebhookInactive()
            if (
                delivery.status == DeliveryStatus.DELIVERING
                and lease_until is not None
                and lease_until > self._clock()
            ):
                raise DeliveryInProgress()
            await deliveries.redeliver(delivery_id)
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="webhook.redelivered",
                entity_type=ENTITY,
                entry=changes.Entry(
                    subscription.id,
                    after={"delivery_id": str(delivery_id), "event_id": str(delivery.event_id)},
                ),
                project_id=delivery.project_id,
            )
            found = await deliveries.get(delivery_id)
        assert found is not None
        return found[0]

    async def _access(
        self, caller: Caller, subscription_id: uuid.UUID, minimum: Role
    ) -> tuple[WebhookSubscription, Role]:
        """The subscription (read, not locked) and the caller's role in its project; the
        connection is released before the role check."""
        async with self._db.connection() as conn:
            subscription = await WebhookSubscriptionRepository(conn).get(subscription_id)
        if subscription is None:
            raise WebhookNotFound()
        role = await caller.require(subscription.project_id, minimum, not_found=WebhookNotFound)
        return subscription, role

    @staticmethod
    async def _locked(
        subscriptions: WebhookSubscriptionRepository, subscription_id: uuid.UUID
    ) -> WebhookSubscription:
        """The subscription, row-locked until the transaction ends; its project never changes."""
        subscription = await subscriptions.get(subscription_id, lock=True)
        if subscription is None:
            raise WebhookNotFound()
        return subscription
