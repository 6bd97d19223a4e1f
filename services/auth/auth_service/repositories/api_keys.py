import uuid
from datetime import datetime

import asyncpg

from auth_service.domain.models import ApiKey, StoredApiKey
from backend_common.instants import Instant
from backend_common.pagination import CursorKey, Page, PageRequest
from backend_common.rbac import Role


class ApiKeyPageKey(CursorKey):
    """Where a page of a user's keys ends: newest first, by (created_at, id)."""

    at: Instant  # with an offset, and in range once in UTC (a forged one is invalid, not a 500)
    id: uuid.UUID


_COLUMNS = "id, name, preview, project_id, role, expires_at, created_at, last_used_at"

# Serialises the key creates of one user until the transaction ends, so the count after it sees
# every key committed before (the count must be a statement of its own, after the lock).
_LOCK_USER = "SELECT pg_advisory_xact_lock(hashtextextended('api_keys:' || $1, 0))"
_COUNT_LIVE = """
    SELECT count(*) FROM api_keys
    WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
"""
_INSERT = f"""
    INSERT INTO api_keys (id, user_id, name, key_hash, preview, project_id, role, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    RETURNING {_COLUMNS}
"""
# Expired keys stay listed (their owner sees why a script fails); revoked ones are gone.
_LIST = f"""
    SELECT {_COLUMNS} FROM api_keys
    WHERE user_id = $1 AND revoked_at IS NULL
      AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
    ORDER BY created_at DESC, id DESC
    LIMIT $4
"""
_GET_FOR_CHECK = """
    SELECT id, user_id, key_hash, project_id, role, expires_at, revoked_at
    FROM api_keys WHERE id = $1
"""
_REVOKE = """
    UPDATE api_keys SET revoked_at = now()
    WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
    RETURNING id
"""
# A no-op (no row version written) when the key was marked used lately, by any process.
_TOUCH = """
    UPDATE api_keys SET last_used_at = now()
    WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))
"""


class ApiKeyRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def count_live_locked(self, user_id: uuid.UUID) -> int:
        """The user's keys neither revoked nor expired, after locking their key creates until
        the transaction ends (needs a transaction)."""
        await self._conn.execute(_LOCK_USER, str(user_id))
        live: int = await self._conn.fetchval(_COUNT_LIVE, user_id)
        return live

    async def insert(
        self,
        *,
        key_id: uuid.UUID,
        user_id: uuid.UUID,
        name: str,
        key_hash: bytes,
        preview: str,
        project_id: uuid.UUID | None,
        role: Role | None,
        expires_at: datetime | None,
    ) -> ApiKey:
        row = await self._conn.fetchrow(
            _INSERT, key_id, user_id, name, key_hash, preview, project_id, role, expires_at
        )
        return ApiKey.model_validate(dict(row))

    async def list(self, user_id: uuid.UUID, *, page: PageRequest) -> Page[ApiKey]:
        after = page.after(ApiKeyPageKey)
        rows = await self._conn.fetch(
            _LIST, user_id, after.at if after else None, after.id if after else None, page.fetch
        )
        return page.page(
            [ApiKey.model_validate(dict(row)) for row in rows],
            key=lambda key: ApiKeyPageKey(at=key.created_at, id=key.id),
        )

    async def get_for_check(self, key_id: uuid.UUID) -> StoredApiKey | None:
        row = await self._conn.fetchrow(_GET_FOR_CHECK, key_id)
        return StoredApiKey.model_validate(dict(row)) if row else None

    async def revoke(self, key_id: uuid.UUID, *, user_id: uuid.UUID) -> bool:
        """Whether a live key of that user was revoked."""
        return await self._conn.fetchval(_REVOKE, key_id, user_id) is not None

    async def touch(self, key_id: uuid.UUID, *, interval: float) -> None:
        await self._conn.execute(_TOUCH, key_id, interval)
