"""API keys: `etpk_<key id as 32 hex digits>_<secret>`, long-lived bearer tokens for scripts.

The auth service mints them and keeps only their SHA-256 digests; the id in the key finds its row
without a scan. A key acts as its user, within its scope: bound to one project it reaches nothing
else, and with a role cap it never acts above that role (`KeyScope`).

Services other than auth verify a key by asking the auth service (`AuthServiceKeys`): one
`GET /api/v1/auth/api-key` with the key as its bearer token, which answers for that key alone.
Answers, grants and refusals alike, are kept for `ttl` seconds (never past the key's expiry), so a
revoked key stops working everywhere within that time, and a key sent with every request costs
the auth service one call per TTL per process. A malformed key is refused here without a call.
"""

import asyncio
import hashlib
import re
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime

import aiohttp
import orjson
from aiohttp import web

from backend_common.auth import API_KEY_PREFIX, AccessClaims, InvalidToken, Monotonic
from backend_common.errors import ProblemError
from backend_common.keys import REQUEST_ID
from backend_common.rbac import Membership, Role

PREFIX = API_KEY_PREFIX
SECRET_BYTES = 32
PREVIEW_CHARS = 4
# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet.
_FORMAT = re.compile(r"etpk_([0-9a-f]{32})_[A-Za-z0-9_-]{43}")
# The expiry of a key that has none: 9999-12-31T23:59:59Z, still a datetime.
NEVER = 253402300799

MALFORMED = "Invalid API key: it is not an etpk_<id>_<secret> key."
REFUSED = "Invalid API key: it is unknown or was revoked."
EXPIRED = "Invalid API key: it has expired."
INTROSPECTION_PATH = "/api/v1/auth/api-key"


@dataclass(frozen=True)
class MintedKey:
    key: str
    digest: bytes
    preview: str


def mint(key_id: uuid.UUID) -> MintedKey:
    key = f"{PREFIX}{key_id.hex}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return MintedKey(key=key, digest=digest(key), preview=preview(key))


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def preview(key: str) -> str:
    """What may be shown of a key: its prefix and last few characters."""
    return f"{PREFIX}…{key[-PREVIEW_CHARS:]}"


def key_id_of(key: str) -> uuid.UUID | None:
    """The id a well-formed key names, else None (the key is not checked)."""
    match = _FORMAT.fullmatch(key)
    return uuid.UUID(hex=match[1]) if match else None


@dataclass(frozen=True)
class KeyScope:
    """What an API key may reach: `project_id` (None: every project of its user) and `role`, a
    cap on the user's role there (None: the user's role), until `expires_at` (None: revoked
    only)."""

    key_id: uuid.UUID
    project_id: uuid.UUID | None = None
    role: Role | None = None
    expires_at: datetime | None = None

    @property
    def restricted(self) -> bool:
        return self.project_id is not None or self.role is not None

    def reaches(self, project_id: uuid.UUID) -> bool:
        return self.project_id is None or self.project_id == project_id

    def cap(self, role: Role) -> Role:
        return role if self.role is None or role.rank <= self.role.rank else self.role

    def limit(self, project_id: uuid.UUID, membership: Membership | None) -> Membership | None:
        """The user's membership as this key may use it: none outside its project, capped."""
        if membership is None or not self.reaches(project_id):
            return None
        return replace(membership, role=self.cap(membership.role))


def key_claims(key: str, *, user_id: uuid.UUID, scope: KeyScope) -> AccessClaims:
    return AccessClaims(
        user_id=user_id,
        token_id=f"{PREFIX}{scope.key_id.hex}",
        session_id=None,
        expires_at=int(scope.expires_at.timestamp()) if scope.expires_at else NEVER,
        token=key,
        api_key=scope,
    )


def forwarded_for(request: web.Request) -> str:
    """The request's X-Forwarded-For with its peer appended: the auth service counts refused
    keys per client address, and believes the chain only from proxies it trusts."""
    earlier = request.headers.get("X-Forwarded-For")
    remote = request.remote or "unknown"
    return f"{earlier}, {remote}" if earlier else remote


# A grant, or the reason of a refusal.
_Answer = AccessClaims | str


class AuthServiceKeys:
    """Verifies API keys through the auth service; a bounded LRU cache of its answers, each kept
    `ttl` seconds. Concurrent requests with one uncached key share one call."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth_url: str,
        *,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        timeout: float = 5.0,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self._session = session
        self._url = auth_url.rstrip("/") + INTROSPECTION_PATH
        self._ttl = ttl
        self._max_entries = max_entries
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._monotonic = monotonic
        # digest of the key → (until when, answer); the key itself is not kept as a dict key.
        self._cache: OrderedDict[bytes, tuple[float, _Answer]] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[_Answer]] = {}

    async def verify(self, key: str, request: web.Request) -> AccessClaims:
        if key_id_of(key) is None:
            raise InvalidToken(MALFORMED)
        fingerprint = digest(key)
        cached = self._cache.get(fingerprint)
        if cached is not None and cached[0] > self._monotonic():
            self._cache.move_to_end(fingerprint)
            return _granted(cached[1])
        pending = self._pending.get(fingerprint)
        if pending is None:
            pending = asyncio.ensure_future(self._ask_and_keep(key, fingerprint, request))
            self._pending[fingerprint] = pending
            pending.add_done_callback(lambda _: self._pending.pop(fingerprint, None))
        # Shielded: a waiter that goes away does not cancel the call the others wait for.
        return _granted(await asyncio.shield(pending))

    async def _ask_and_keep(self, key: str, fingerprint: bytes, request: web.Request) -> _Answer:
        answer = await self._ask(key, request)
        lifetime = self._ttl
        if isinstance(answer, AccessClaims):
            lifetime = min(lifetime, answer.expires_at - time.time())
        if lifetime > 0:
            self._cache[fingerprint] = (self._monotonic() + lifetime, answer)
            self._cache.move_to_end(fingerprint)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return answer

    async def _ask(self, key: str, request: web.Request) -> _Answer:
        headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": forwarded_for(request)}
        request_id = request.get(REQUEST_ID)
        if request_id:
            headers["X-Request-Id"] = request_id
        try:
            async with self._session.get(
                self._url, headers=headers, timeout=self._timeout
            ) as response:
                body = await response.read()
                if response.status == 200:
                    return _claims_of(key, orjson.loads(body))
                if response.status == 401:
                    return _refusal(body)
                if response.status == 429:
                    raise ProblemError(
                        429,
                        "too_many_requests",
                        "Too many refused API keys from this address; retry later.",
                        headers={"Retry-After": response.headers.get("Retry-After", "1")},
                    )
                raise ProblemError(
                    503, "auth_unavailable", f"The auth service answered {response.status}."
                )
        except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as exc:
            raise ProblemError(
                503, "auth_unavailable", f"Could not ask the auth service: {exc!r}"
            ) from None


def _granted(answer: _Answer) -> AccessClaims:
    if isinstance(answer, str):
        raise InvalidToken(answer)
    return answer


def _claims_of(key: str, answer: dict[str, object]) -> AccessClaims:
    """The claims of the auth service's answer about a key (`ApiKeyGrantOut` in its spec)."""
    project_id, role, expires_at = answer["project_id"], answer["role"], answer["expires_at"]
    scope = KeyScope(
        key_id=uuid.UUID(str(answer["id"])),
        project_id=uuid.UUID(str(project_id)) if project_id is not None else None,
        role=Role(str(role)) if role is not None else None,
        expires_at=datetime.fromisoformat(str(expires_at)) if expires_at is not None else None,
    )
    return key_claims(key, user_id=uuid.UUID(str(answer["user_id"])), scope=scope)


def _refusal(body: bytes) -> str:
    """The reason the auth service gave (one of ours), else a plain refusal."""
    try:
        detail = orjson.loads(body).get("detail")
    except (ValueError, AttributeError):
        detail = None
    return detail if detail in (MALFORMED, REFUSED, EXPIRED) else REFUSED
