"""Stored answers of keyed requests (`request_idempotency`)."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

# Stores the answer under a new key, or over one that has expired; returns nothing when the key
# holds a live answer. Waits while another transaction holds the same key.
_STORE = """
    INSERT INTO request_idempotency
        (user_id, key, fingerprint, expires_at, status, body, content_type, location)
    VALUES ($1, $2, $3, now() + $4::interval, $5, $6, $7, $8)
    ON CONFLICT (user_id, key) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, expires_at = EXCLUDED.expires_at,
            status = EXCLUDED.status, body = EXCLUDED.body,
            content_type = EXCLUDED.content_type, location = EXCLUDED.location,
            created_at = now()
        WHERE request_idempotency.expires_at <= now()
    RETURNING true
"""
_GET = """
    SELECT fingerprint, status, body, content_type, location
    FROM request_idempotency WHERE user_id = $1 AND key = $2 AND expires_at > now()
"""
_PURGE = "DELETE FROM request_idempotency WHERE expires_at <= coalesce($1, now())"


@dataclass(frozen=True)
class StoredAnswer:
    fingerprint: bytes
    status: int
    body: bytes
    content_type: str
    location: str | None


class IdempotencyRepository:
    """On a connection, or on the pool for single statements outside a transaction."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self._conn = conn

    async def store(
        self, *, user_id: uuid.UUID, key: str, ttl: timedelta, answer: StoredAnswer
    ) -> bool:
        """False when the key already holds a live answer."""
        stored = await self._conn.fetchval(
            _STORE,
            user_id,
            key,
            answer.fingerprint,
            ttl,
            answer.status,
            answer.body,
            answer.content_type,
            answer.location,
        )
        return stored is True

    async def get(self, *, user_id: uuid.UUID, key: str) -> StoredAnswer | None:
        row = await self._conn.fetchrow(_GET, user_id, key)
        return None if row is None else StoredAnswer(**dict(row))

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Deletes answers past their time at `now` (default: the database's); how many."""
        result: str = await self._conn.execute(_PURGE, now)
        return int(result.split()[-1])
