"""Announces deleted projects to the experiment service (docs/operations.md, "Deleting a
project"), from the outbox the deletion wrote in its own transaction.

Every auth process runs one (`project_deletion_delivery_enabled`); any number may share the
database. A claim gives a row a fresh lease token and `lease_until`; the outcome is recorded
only under that token, so a deliverer that stalled past its lease cannot overwrite a newer
claim, and the claim of one that died comes back when its lease ends. A row is sent until the
experiment service answers 2xx (it answers so only once the deletion is durably recorded there,
and a resend is harmless): after a failure it waits `backoff_base * 2^(attempt-1)` seconds (a
quarter less at most, at random), never more than `backoff_cap`, and is tried again, for as
long as it takes. A deletion wakes the deliverer of its own process; others find the row at
their next poll.

The request carries a service token (backend_common.service_tokens) that this service signs
with its access-token key, for the internal audience and the `project-deletions` scope.
"""

import asyncio
import contextlib
import random
import time
from datetime import timedelta

import aiohttp
import structlog

from auth_service.repositories.deletion_outbox import Announcement, DeletionOutboxRepository
from auth_service.settings import AuthSettings
from auth_service.signing import SigningKeys
from backend_common.clock import Clock, utc_now
from backend_common.db import UNAVAILABLE, Database
from backend_common.service_tokens import PROJECT_DELETIONS_SCOPE, service_token_claims

_log = structlog.get_logger(__name__)

PATH = "/internal/v1/project-deletions"
BATCH = 10


class DeletionAnnouncer:
    def __init__(
        self,
        db: Database,
        keys: SigningKeys,
        settings: AuthSettings,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._db = db
        self._keys = keys
        self._settings = settings
        self._clock = clock
        self._url = settings.experiment_url.rstrip("/") + PATH
        self._lease = timedelta(seconds=settings.project_deletion_lease_seconds)
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._loop is not None:
            while not self._loop.done():
                self._loop.cancel()
                await asyncio.wait({self._loop}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                sent = await self.announce_due()
            except UNAVAILABLE as exc:
                _log.warning("project_deletion_claim_failed", error=repr(exc))
                sent = 0
            except Exception:
                _log.exception("project_deletion_claim_failed")
                sent = 0
            if sent == BATCH:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), self._settings.project_deletion_poll_interval
                )

    async def announce_due(self) -> int:
        """Claims the due announcements (up to a batch) and sends them; how many were claimed."""
        async with self._db.transaction() as conn:
            claimed = await DeletionOutboxRepository(conn).claim(
                now=self._clock(), lease=self._lease, limit=BATCH
            )
        await asyncio.gather(*(self._deliver(one) for one in claimed))
        return len(claimed)

    async def _deliver(self, claimed: Announcement) -> None:
        started_at = self._clock()
        status, error = await self._send(claimed)
        now = self._clock()
        async with self._db.transaction() as conn:
            outbox = DeletionOutboxRepository(conn)
            if status is not None and 200 <= status < 300:
                kept = await outbox.acknowledge(claimed, now=now, status=status)
                retry_at = None
            else:
                retry_at = now + self._backoff(claimed.attempt)
                kept = await outbox.retry(
                    claimed,
                    at=retry_at,
                    status=status,
                    error=error or f"HTTP {status}",
                    attempted_at=started_at,
                )
        log = _log.info if kept and retry_at is None else _log.warning
        log(
            "project_deletion_announced" if retry_at is None else "project_deletion_not_announced",
            project_id=str(claimed.project_id),
            attempt=claimed.attempt,
            http_status=status,
            error=error,
            retry_at=None if retry_at is None else retry_at.isoformat(),
            lease_lost=not kept,
        )

    async def _send(self, claimed: Announcement) -> tuple[int | None, str | None]:
        settings = self._settings
        token = self._keys.sign(
            service_token_claims(
                service=settings.service_name,
                scope=PROJECT_DELETIONS_SCOPE,
                issuer=settings.jwt_issuer,
                audience=settings.internal_audience,
                now=int(time.time()),
            )
        )
        body = {
            "event_id": str(claimed.id),
            "project_id": str(claimed.project_id),
            "deleted_at": claimed.deleted_at.isoformat(),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        try:
            async with self._session.post(
                self._url,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=settings.project_deletion_timeout),
            ) as response:
                text = await response.text(errors="replace")
                return response.status, None if response.status < 300 else text[:500]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, repr(exc)[:500]

    def _backoff(self, attempt: int) -> timedelta:
        settings = self._settings
        wait = min(
            settings.project_deletion_backoff_base * 2 ** min(attempt - 1, 30),
            settings.project_deletion_backoff_cap,
        )
        return timedelta(seconds=wait * random.uniform(0.75, 1.0))
