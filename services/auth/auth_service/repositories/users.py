import uuid

import asyncpg
from pydantic import Field

from auth_service.domain.errors import EmailTaken, UsernameTaken
from auth_service.domain.models import User, UserCredentials, UserSummary
from backend_common.pagination import CursorKey, Page, PageRequest
from backend_common.sql import escape_like

_COLUMNS = "id, username, email, created_at"

_INSERT = f"""
    INSERT INTO users (username, email, password_hash) VALUES ($1, $2, $3)
    RETURNING {_COLUMNS}
"""
_GET = f"SELECT {_COLUMNS} FROM users WHERE id = $1"
_GET_CREDENTIALS_BY_LOGIN = f"""
    SELECT {_COLUMNS}, password_hash FROM users
    WHERE lower(username) = lower($1) OR lower(email) = lower($1)
"""
_GET_CREDENTIALS = f"SELECT {_COLUMNS}, password_hash FROM users WHERE id = $1"
_GET_BY_USERNAME = f"SELECT {_COLUMNS} FROM users WHERE lower(username) = lower($1)"
_GET_BY_EMAIL = f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower($1)"
_SET_PASSWORD = "UPDATE users SET password_hash = $2 WHERE id = $1"
# Prefix match on the username index; the cursor is the last lower(username) returned. Only the
# caller, users sharing a project with the caller (project $6 only, when given), and the user
# named exactly ($5) are visible.
_SEARCH = """
    SELECT u.id, u.username FROM users u
    WHERE lower(u.username) LIKE $1 AND ($2::text IS NULL OR lower(u.username) > $2)
      AND (
        u.id = $4
        OR lower(u.username) = $5
        OR EXISTS (
          SELECT 1 FROM project_members mine
          JOIN project_members theirs ON theirs.project_id = mine.project_id
          WHERE mine.user_id = $4 AND theirs.user_id = u.id
            AND ($6::uuid IS NULL OR mine.project_id = $6)
        )
      )
    ORDER BY lower(u.username)
    LIMIT $3
"""


class UserKey(CursorKey):
    """Where a page of a user search ends: the last lower(username) returned."""

    # PostgreSQL text cannot hold NUL: a forged cursor carrying one is invalid, not a driver error.
    u: str = Field(pattern=r"^[^\x00]*$")


class UserRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(self, *, username: str, email: str, password_hash: str) -> User:
        try:
            row = await self._conn.fetchrow(_INSERT, username, email, password_hash)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "users_username_key":
                raise UsernameTaken() from None
            raise EmailTaken() from None
        return User.model_validate(dict(row))

    async def get(self, user_id: uuid.UUID) -> User | None:
        row = await self._conn.fetchrow(_GET, user_id)
        return User.model_validate(dict(row)) if row else None

    async def get_by_username(self, username: str) -> User | None:
        row = await self._conn.fetchrow(_GET_BY_USERNAME, username)
        return User.model_validate(dict(row)) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = await self._conn.fetchrow(_GET_BY_EMAIL, email)
        return User.model_validate(dict(row)) if row else None

    async def get_credentials(self, user_id: uuid.UUID) -> UserCredentials | None:
        row = await self._conn.fetchrow(_GET_CREDENTIALS, user_id)
        return UserCredentials.model_validate(dict(row)) if row else None

    async def get_credentials_by_login(self, login: str) -> UserCredentials | None:
        row = await self._conn.fetchrow(_GET_CREDENTIALS_BY_LOGIN, login)
        return UserCredentials.model_validate(dict(row)) if row else None

    async def set_password(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self._conn.execute(_SET_PASSWORD, user_id, password_hash)

    async def search(
        self,
        *,
        prefix: str,
        visible_to: uuid.UUID,
        within: uuid.UUID | None = None,
        page: PageRequest,
    ) -> Page[UserSummary]:
        """Users whose username starts with `prefix` that `visible_to` may see: themselves, those
        sharing a project with them (project `within` only, when given), and the one whose
        username is exactly `prefix`."""
        after = page.after(UserKey)
        rows = await self._conn.fetch(
            _SEARCH,
            escape_like(prefix.lower()) + "%",
            after.u if after else None,
            page.fetch,
            visible_to,
            prefix.lower(),
            within,
        )
        return page.page(
            [UserSummary.model_validate(dict(row)) for row in rows],
            key=lambda user: UserKey(u=user.username.lower()),
        )
