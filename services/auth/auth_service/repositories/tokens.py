import uuid
from datetime import datetime

import asyncpg

from auth_service.domain.models import StoredRefreshToken

_INSERT_REFRESH = """
    INSERT INTO refresh_tokens (family_id, user_id, token_hash, expires_at)
    VALUES ($1, $2, $3, $4)
"""
# Locks the row so that two refreshes with one token are serialised: the second sees it spent.
_GET_REFRESH_FOR_UPDATE = """
    SELECT id, family_id, user_id, expires_at, spent_at, revoked_at
    FROM refresh_tokens WHERE token_hash = $1
    FOR UPDATE
"""
_SPEND_REFRESH = "UPDATE refresh_tokens SET spent_at = now() WHERE id = $1"
_REVOKE_FAMILY = """
    UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL
"""
_REVOKE_USER_EXCEPT_FAMILY = """
    UPDATE refresh_tokens SET revoked_at = now()
    WHERE user_id = $1 AND revoked_at IS NULL AND family_id IS DISTINCT FROM $2
"""
_INSERT_RESET = """
    INSERT INTO password_resets (user_id, token_hash, expires_at) VALUES ($1, $2, $3)
"""
_FIND_RESET = """
    SELECT user_id FROM password_resets
    WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
"""
_USE_RESET = """
    UPDATE password_resets SET used_at = now()
    WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
    RETURNING user_id
"""


# A new password makes every reset token of its user useless.
_EXPIRE_RESETS_OF_USER = """
    UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL
"""


class RefreshTokenRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(
        self, *, family_id: uuid.UUID, user_id: uuid.UUID, token_hash: bytes, expires_at: datetime
    ) -> None:
        await self._conn.execute(_INSERT_REFRESH, family_id, user_id, token_hash, expires_at)

    async def get_for_update(self, token_hash: bytes) -> StoredRefreshToken | None:
        row = await self._conn.fetchrow(_GET_REFRESH_FOR_UPDATE, token_hash)
        return StoredRefreshToken.model_validate(dict(row)) if row else None

    async def spend(self, token_id: uuid.UUID) -> None:
        await self._conn.execute(_SPEND_REFRESH, token_id)

    async def revoke_family(self, family_id: uuid.UUID) -> None:
        await self._conn.execute(_REVOKE_FAMILY, family_id)

    async def revoke_user(self, user_id: uuid.UUID, *, keep_family: uuid.UUID | None) -> None:
        await self._conn.execute(_REVOKE_USER_EXCEPT_FAMILY, user_id, keep_family)


class PasswordResetRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(self, *, user_id: uuid.UUID, token_hash: bytes, expires_at: datetime) -> None:
        await self._conn.execute(_INSERT_RESET, user_id, token_hash, expires_at)

    async def find_user(self, token_hash: bytes) -> uuid.UUID | None:
        """The user of a valid token (without using it); None if unknown, used or expired."""
        user_id: uuid.UUID | None = await self._conn.fetchval(_FIND_RESET, token_hash)
        return user_id

    async def use(self, token_hash: bytes) -> uuid.UUID | None:
        """Marks a valid token used and returns its user; None if unknown, used or expired."""
        user_id: uuid.UUID | None = await self._conn.fetchval(_USE_RESET, token_hash)
        return user_id

    async def expire_for_user(self, user_id: uuid.UUID) -> None:
        await self._conn.execute(_EXPIRE_RESETS_OF_USER, user_id)
