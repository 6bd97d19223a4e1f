"""Accounts and sessions: registration, login, refresh-token rotation, logout, passwords."""

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
import structlog

from auth_service import monitoring
from auth_service.domain.errors import (
    ApiKeyNotAllowed,
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidResetToken,
    RefreshTokenReused,
    RegistrationClosed,
    Throttled,
    UsernameTaken,
    UserNotFound,
    WrongPassword,
)
from auth_service.domain.models import Principal, TokenPair, User
from auth_service.domain.passwords import PasswordHasher
from auth_service.domain.throttle import CredentialThrottle
from auth_service.models import LoginIn, PasswordChangeIn, PasswordResetConfirmIn, RegisterIn
from auth_service.repositories.tokens import PasswordResetRepository, RefreshTokenRepository
from auth_service.repositories.users import UserRepository
from auth_service.signing import SigningKeys, access_token_claims
from backend_common.db import Database

_log = structlog.get_logger(__name__)

REFRESH_TOKEN_PREFIX = "etpr_"
RESET_TOKEN_PREFIX = "etpp_"


def _new_secret(prefix: str) -> tuple[str, bytes]:
    token = prefix + secrets.token_urlsafe(32)
    return token, _digest(token)


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class ResetSender(Protocol):
    """Delivers a password reset token to its user (by email in a real installation)."""

    async def send_reset(self, *, user: User, token: str, expires_at: datetime) -> None: ...


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str
    audience: str
    access_ttl: int
    refresh_ttl: int
    reset_ttl: int


class Accounts:
    def __init__(
        self,
        db: Database,
        *,
        hasher: PasswordHasher,
        keys: SigningKeys,
        policy: TokenPolicy,
        reset_sender: ResetSender,
        registration_open: bool,
        throttle: CredentialThrottle,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._keys = keys
        self._policy = policy
        self._reset_sender = reset_sender
        self._registration_open = registration_open
        self._throttle = throttle
        self._background: set[asyncio.Task[None]] = set()

    async def register(self, data: RegisterIn, *, client: str | None) -> User:
        if not self._registration_open:
            raise RegistrationClosed()
        self._throttle.attempt(client)
        # bcrypt is the expensive part: refuse what a lookup can refuse before hashing. Two
        # racing registrations of one name both pass here; the unique constraint stops the second.
        async with self._db.connection() as conn:
            users = UserRepository(conn)
            if await users.get_by_username(data.username) is not None:
                raise UsernameTaken()
            if await users.get_by_email(data.email) is not None:
                raise EmailTaken()
        password_hash = await self._hasher.hash(data.password)
        async with self._db.transaction() as conn:
            return await UserRepository(conn).insert(
                username=data.username, email=data.email, password_hash=password_hash
            )

    async def login(self, data: LoginIn, *, client: str | None) -> TokenPair:
        """`data.username` may be the username or the email address; `client` is the caller's
        address (None when not known)."""
        try:
            self._throttle.login_attempt(data.username, client)
        except Throttled:
            monitoring.login_failed(monitoring.THROTTLED)
            raise
        async with self._db.connection() as conn:
            user = await UserRepository(conn).get_credentials_by_login(data.username)
        # Verified even for an unknown user (against a dummy hash): same answer, same time.
        if not await self._hasher.verify(data.password, user.password_hash if user else None):
            monitoring.login_failed(monitoring.INVALID_CREDENTIALS)
            raise InvalidCredentials()
        assert user is not None
        async with self._db.transaction() as conn:
            pair = await self._start_session(conn, user_id=user.id, family_id=uuid.uuid4())
        self._throttle.login_succeeded(data.username, client)
        return pair

    async def refresh(self, refresh_token: str) -> TokenPair:
        async with self._db.transaction() as conn:
            tokens = RefreshTokenRepository(conn)
            stored = await tokens.get_for_update(_digest(refresh_token))
            if (
                stored is None
                or stored.revoked_at is not None
                or stored.expires_at <= datetime.now(UTC)
            ):
                raise InvalidRefreshToken()
            if stored.spent_at is None:
                await tokens.spend(stored.id)
                return await self._start_session(
                    conn, user_id=stored.user_id, family_id=stored.family_id
                )
            # A spent token presented again means it leaked: the whole session ends, and that
            # revocation commits before the error is raised.
            await tokens.revoke_family(stored.family_id)
        _log.warning("refresh_token_reused", family_id=str(stored.family_id))
        raise RefreshTokenReused()

    async def logout(self, refresh_token: str) -> None:
        async with self._db.transaction() as conn:
            tokens = RefreshTokenRepository(conn)
            stored = await tokens.get_for_update(_digest(refresh_token))
            if stored is not None:
                await tokens.revoke_family(stored.family_id)

    async def me(self, user_id: uuid.UUID) -> User:
        async with self._db.connection() as conn:
            user = await UserRepository(conn).get(user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def change_password(
        self, *, caller: Principal, session_id: str | None, data: PasswordChangeIn
    ) -> None:
        """Sets a new password and ends every other session (the caller's `session_id` stays).
        Only with a password sign-in: a leaked API key must not take the account over."""
        if caller.key is not None:
            raise ApiKeyNotAllowed("The password is changed with a password sign-in, not a key.")
        user_id = caller.user_id
        async with self._db.connection() as conn:
            user = await UserRepository(conn).get_credentials(user_id)
        if user is None:
            raise UserNotFound()
        if not await self._hasher.verify(data.old_password, user.password_hash):
            raise WrongPassword()
        new_hash = await self._hasher.hash(data.new_password)
        async with self._db.transaction() as conn:
            await UserRepository(conn).set_password(user_id, new_hash)
            await RefreshTokenRepository(conn).revoke_user(
                user_id, keep_family=_uuid_or_none(session_id)
            )
            await PasswordResetRepository(conn).expire_for_user(user_id)

    def request_password_reset(self, email: str, *, client: str | None) -> None:
        """Returns at once: the lookup and the delivery run in the background, so the time the
        answer takes does not tell whether the address is registered. Throttled per client and
        per address asked for, registered or not (so the answer tells nothing either)."""
        self._throttle.reset_request(email, client)
        task = asyncio.create_task(self._send_password_reset(email))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Waits for the background work (password reset deliveries) started so far."""
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _send_password_reset(self, email: str) -> None:
        token, digest = _new_secret(RESET_TOKEN_PREFIX)
        expires_at = datetime.now(UTC) + timedelta(seconds=self._policy.reset_ttl)
        try:
            async with self._db.transaction() as conn:
                user = await UserRepository(conn).get_by_email(email)
                if user is None:
                    return
                await PasswordResetRepository(conn).insert(
                    user_id=user.id, token_hash=digest, expires_at=expires_at
                )
            await self._reset_sender.send_reset(user=user, token=token, expires_at=expires_at)
        except Exception:
            _log.exception("password_reset_failed")

    async def reset_password(self, data: PasswordResetConfirmIn, *, client: str | None) -> None:
        self._throttle.attempt(client)
        digest = _digest(data.token)
        # A forged token is refused by one lookup, before bcrypt; the token is used (atomically)
        # only after hashing, and a token used meanwhile by a racing request is refused then.
        async with self._db.connection() as conn:
            if await PasswordResetRepository(conn).find_user(digest) is None:
                raise InvalidResetToken()
        new_hash = await self._hasher.hash(data.new_password)
        async with self._db.transaction() as conn:
            user_id = await PasswordResetRepository(conn).use(digest)
            if user_id is None:
                raise InvalidResetToken()
            await UserRepository(conn).set_password(user_id, new_hash)
            await RefreshTokenRepository(conn).revoke_user(user_id, keep_family=None)
            await PasswordResetRepository(conn).expire_for_user(user_id)

    async def _start_session(
        self, conn: asyncpg.Connection, *, user_id: uuid.UUID, family_id: uuid.UUID
    ) -> TokenPair:
        refresh_token, digest = _new_secret(REFRESH_TOKEN_PREFIX)
        await RefreshTokenRepository(conn).insert(
            family_id=family_id,
            user_id=user_id,
            token_hash=digest,
            expires_at=datetime.now(UTC) + timedelta(seconds=self._policy.refresh_ttl),
        )
        access_token = self._keys.sign(
            access_token_claims(
                user_id=user_id,
                session_id=family_id,
                issuer=self._policy.issuer,
                audience=self._policy.audience,
                ttl=self._policy.access_ttl,
            )
        )
        return TokenPair(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=self._policy.access_ttl,
        )
