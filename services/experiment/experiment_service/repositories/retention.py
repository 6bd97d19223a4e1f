"""Deleting what is past its retention (docs/jobs.md), a chunk per statement."""

from datetime import datetime

import asyncpg

# The audit log refuses every DELETE but inside a transaction that allows the purge.
_ALLOW_AUDIT_PURGE = "SELECT set_config('etp.audit_purge', 'on', true)"
_PURGE_AUDIT = """
    DELETE FROM audit_log WHERE id IN (
        SELECT id FROM audit_log WHERE at < $1 ORDER BY id LIMIT $2
    )
"""
# Events whose every delivery is over (delivered or dead), with their deliveries and attempts.
_PURGE_WEBHOOK_EVENTS = """
    DELETE FROM webhook_events WHERE id IN (
        SELECT e.id FROM webhook_events e
        WHERE e.created_at < $1
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries d
              WHERE d.event_id = e.id AND d.status IN ('pending', 'delivering', 'failed')
          )
        ORDER BY e.created_at LIMIT $2
    )
"""


def _count(result: str) -> int:
    return int(result.split()[-1])


class RetentionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def purge_audit(self, *, before: datetime, limit: int) -> int:
        await self._conn.execute(_ALLOW_AUDIT_PURGE)
        return _count(await self._conn.execute(_PURGE_AUDIT, before, limit))

    async def purge_webhook_events(self, *, before: datetime, limit: int) -> int:
        return _count(await self._conn.execute(_PURGE_WEBHOOK_EVENTS, before, limit))
