"""The webhook dispatcher: claims due deliveries from the outbox and sends them.

It runs as a task in every experiment process (`webhook_dispatcher_enabled`) and can run alone
(`python -m experiment_service.workers`); any number may share one database. A claim gives a
delivery a fresh lease token and `lease_until`; the outcome is recorded only under that token, so
a dispatcher that stalled past its lease cannot overwrite a newer claim, and the claim of one
that died comes back when its lease ends. A NOTIFY on every new delivery wakes it; a poll every
`webhook_poll_interval` seconds picks up retries that have come due, and announces conversion
profiles scheduled ahead that have become active by time alone.
"""

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta

import structlog

from backend_common.clock import Clock, utc_now
from backend_common.db import UNAVAILABLE, Database
from backend_common.notifications import Listener
from experiment_service import monitoring
from experiment_service.domain.webhooks import outbox
from experiment_service.domain.webhooks.models import ClaimedDelivery
from experiment_service.domain.webhooks.policy import (
    DeliveryStatus,
    judge,
    next_try,
    retry_after,
)
from experiment_service.domain.webhooks.targets import TargetGuard
from experiment_service.repositories.webhooks.outbox import CHANNEL, WebhookOutboxRepository
from experiment_service.repositories.webhooks.subscriptions import WebhookSubscriptionRepository
from experiment_service.settings import ExperimentSettings
from experiment_service.workers.sender import TryResult, guarded_session, send

_log = structlog.get_logger(__name__)

GONE = "The receiver answered 410 Gone."


class Dispatcher:
    def __init__(
        self, db: Database, settings: ExperimentSettings, *, clock: Clock = utc_now
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._guard = TargetGuard(settings.webhook_allowed_hosts)
        self._lease = timedelta(seconds=settings.webhook_lease_seconds)
        self._sending: Counter[uuid.UUID] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._listener = Listener(
            settings.database_url.get_secret_value(),
            {CHANNEL: lambda _: self._wake.set()},
            on_reconnect=self._wake.set,
        )
        self._session = guarded_session(self._guard)
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self._next_announcement = 0.0

    async def start(self) -> None:
        await self._listener.start()
        self._loop = asyncio.create_task(self._run())
        _log.info("webhook_dispatcher_started")

    async def stop(self) -> None:
        """Stops claiming; sends in flight get up to one timeout to finish, then are cut (their
        leases end and another dispatcher sends them again)."""
        self._stopping = True
        if self._loop is not None:
            # Cancelled until done: on Python < 3.12 wait_for can swallow a cancellation.
            while not self._loop.done():
                self._loop.cancel()
                await asyncio.wait({self._loop}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self._settings.webhook_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._listener.stop()
        await self._session.close()
        _log.info("webhook_dispatcher_stopped")

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self._announce_activations()
            except Exception:
                # Retried at the next poll; it must not hold up deliveries.
                _log.exception("webhook_activation_announcement_failed")
            try:
                claimed, full = await self.dispatch_once()
            except UNAVAILABLE as exc:
                _log.warning("webhook_claim_failed", error=repr(exc))
                claimed, full = 0, False
            except Exception:
                _log.exception("webhook_claim_failed")
                claimed, full = 0, False
            if claimed and full:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.webhook_poll_interval)

    async def _announce_activations(self) -> None:
        """At most once per poll interval: events for scheduled profiles that became active."""
        if time.monotonic() < self._next_announcement:
            return
        self._next_announcement = time.monotonic() + self._settings.webhook_poll_interval
        async with self._db.transaction() as conn:
            await outbox.announce_scheduled_activations(conn, now=self._clock())

    async def dispatch_once(self) -> tuple[int, bool]:
        """Claims what is due (as much as there are free slots) and starts sending it; how many
        were claimed, and whether that filled every free slot."""
        free = self._settings.webhook_concurrency - len(self._tasks)
        if free <= 0:
            return 0, False
        async with self._db.transaction() as conn:
            claimed = await WebhookOutboxRepository(conn).claim(
                now=self._clock(),
                lease=self._lease,
                limit=free,
                per_target=self._settings.webhook_target_concurrency,
                sending=dict(self._sending),
            )
        for delivery in claimed:
            self._sending[delivery.subscription_id] += 1
            task = asyncio.create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed), len(claimed) == free

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        try:
            started_at = self._clock()
            result = await send(
                self._session,
                self._guard,
                delivery,
                now=started_at,
                timeout_seconds=self._settings.webhook_timeout,
            )
            await self._record(delivery, started_at, result)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease runs out and the delivery is sent again.
            _log.exception("webhook_record_failed", delivery_id=str(delivery.id))
        finally:
            self._sending[delivery.subscription_id] -= 1
            if self._sending[delivery.subscription_id] <= 0:
                del self._sending[delivery.subscription_id]
            self._wake.set()

    def _next_try(
        self, delivery: ClaimedDelivery, result: TryResult, now: datetime
    ) -> datetime | None:
        """When to try a failed delivery again (None: never). Whatever the receiver's answer
        holds, this gives a time within the backoff cap: an exception here would leave the
        attempt unrecorded, and the delivery sent again every lease for ever."""
        settings = self._settings
        cap = timedelta(seconds=settings.webhook_backoff_cap)
        try:
            wait = retry_after(result.retry_after, now, longest=cap)
        except Exception:
            _log.exception("webhook_retry_after_unreadable", delivery_id=str(delivery.id))
            wait = None
        return next_try(
            attempts=delivery.attempt,
            max_attempts=settings.webhook_max_attempts,
            now=now,
            base=settings.webhook_backoff_base,
            cap=settings.webhook_backoff_cap,
            retry_after_wait=wait,
        )

    async def _record(
        self, delivery: ClaimedDelivery, started_at: datetime, result: TryResult
    ) -> None:
        outcome = judge(result.status)
        now = self._clock()
        next_attempt_at = None
        if outcome.delivered:
            status = DeliveryStatus.DELIVERED
        elif outcome.disable_subscription:
            status = DeliveryStatus.DEAD
        else:
            next_attempt_at = self._next_try(delivery, result, now)
            status = DeliveryStatus.FAILED if next_attempt_at else DeliveryStatus.DEAD
        async with self._db.transaction() as conn:
            outbox = WebhookOutboxRepository(conn)
            kept = await outbox.finish(
                delivery.id,
                delivery.lease_token,
                status=status,
                next_attempt_at=next_attempt_at,
                delivered_at=now if outcome.delivered else None,
                last_status=result.status,
                last_error=result.error,
                attempted_at=started_at,
            )
            await outbox.log_attempt(
                delivery.id,
                attempt=delivery.attempt,
                started_at=started_at,
                status_code=result.status,
                error=result.error,
                latency_ms=result.latency_ms,
                response_body=result.response_body,
                superseded=not kept,
            )
            if kept and outcome.disable_subscription:
                await WebhookSubscriptionRepository(conn).disable(
                    delivery.subscription_id, reason=GONE
                )
        monitoring.delivery_attempted(status.value if kept else "superseded")
        log = _log.info if kept else _log.warning
        log(
            "webhook_attempt" if kept else "webhook_lease_lost",
            delivery_id=str(delivery.id),
            event_id=str(delivery.event_id),
            attempt=delivery.attempt,
            status=status.value,
            http_status=result.status,
            error=result.error,
            latency_ms=result.latency_ms,
        )
