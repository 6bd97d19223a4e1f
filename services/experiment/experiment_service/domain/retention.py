"""Retention of what the experiment database keeps for a while (docs/jobs.md): the audit log
(a year and more by default), webhook events with their deliveries and attempts once every
delivery is over, and the history of the background jobs. Idempotency-Key answers have their
own 24 hours (`idempotency_keys.purge`). Each deletes in chunks, a transaction each."""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg

from backend_common.db import Database
from backend_common.repositories.jobs import JobRepository
from experiment_service.repositories.retention import RetentionRepository

CHUNK = 1000


class Retention:
    def __init__(
        self,
        db: Database,
        *,
        audit: timedelta,
        webhook_events: timedelta,
        job_history: timedelta,
    ) -> None:
        self._db = db
        self._audit = audit
        self._webhook_events = webhook_events
        self._job_history = job_history

    async def _in_chunks(
        self, purge: Callable[[asyncpg.Connection, datetime, int], Awaitable[int]], before: datetime
    ) -> int:
        deleted = 0
        while True:
            async with self._db.transaction() as conn:
                count = await purge(conn, before, CHUNK)
            deleted += count
            if count < CHUNK:
                return deleted

    async def purge_audit(self, now: datetime) -> int:
        return await self._in_chunks(
            lambda conn, before, limit: RetentionRepository(conn).purge_audit(
                before=before, limit=limit
            ),
            now - self._audit,
        )

    async def purge_webhook_events(self, now: datetime) -> int:
        return await self._in_chunks(
            lambda conn, before, limit: RetentionRepository(conn).purge_webhook_events(
                before=before, limit=limit
            ),
            now - self._webhook_events,
        )

    async def purge_job_runs(self, now: datetime) -> int:
        """Runs older than the history, but each job's last one."""
        return await self._in_chunks(
            lambda conn, before, limit: JobRepository(conn).purge_runs(before=before, limit=limit),
            now - self._job_history,
        )
