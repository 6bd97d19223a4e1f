"""API keys: created, listed and revoked by their user, checked on every request that sends one.

Rules (docs/security.md, "API keys"):
- Keys are managed with an interactive sign-in (an access token): a key cannot create keys nor
  list them; it may revoke itself, and nothing else.
- A key bound to a project needs its user to be a member there; its role cap (viewer or editor)
  may not be above the user's role in that project when it is created (refused, not clamped).
  Afterwards the key acts with the lesser of the cap and the user's role at the time of use.
- A user has at most `max_per_user` keys neither revoked nor expired.
- `last_used_at` is written at most once per `touch_interval` seconds per key.
"""

import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from auth_service.domain.errors import (
    ApiKeyLimit,
    ApiKeyNotAllowed,
    ApiKeyNotFound,
    InvalidApiKey,
    ProjectNotFound,
    RoleCapTooHigh,
)
from auth_service.domain.models import ApiKey, NewApiKey, Principal, StoredApiKey
from auth_service.domain.throttle import KeyFailures
from auth_service.models import ApiKeyCreate
from auth_service.repositories.api_keys import ApiKeyRepository
from auth_service.repositories.projects import MemberRepository
from backend_common.api_keys import (
    EXPIRED,
    MALFORMED,
    REFUSED,
    KeyScope,
    digest,
    key_id_of,
    mint,
)
from backend_common.clock import Clock, utc_now
from backend_common.db import Database
from backend_common.pagination import Page, PageRequest

# Compared against when a key's id is unknown: the same work and answer as a wrong secret.
_NO_DIGEST = bytes(32)
MAX_REMEMBERED_TOUCHES = 100_000


def _interactive(caller: Principal) -> None:
    if caller.key is not None:
        raise ApiKeyNotAllowed("API keys are managed with a password sign-in, not with a key.")


class ApiKeys:
    def __init__(
        self,
        db: Database,
        *,
        max_per_user: int,
        touch_interval: float,
        failures: KeyFailures,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._max_per_user = max_per_user
        self._touch_interval = touch_interval
        self._failures = failures
        self._clock = clock
        self._monotonic = monotonic
        # key id → when this process last marked it used; oldest first.
        self._touched: OrderedDict[uuid.UUID, float] = OrderedDict()

    async def create(self, caller: Principal, data: ApiKeyCreate) -> NewApiKey:
        _interactive(caller)
        async with self._db.transaction() as conn:
            if data.project_id is not None:
                role = await MemberRepository(conn).role(data.project_id, caller.user_id)
                if role is None:
                    raise ProjectNotFound()
                if data.role is not None and data.role.rank > role.rank:
                    raise RoleCapTooHigh(
                        f"You are {role} in this project: a key cannot be capped at {data.role}."
                    )
            keys = ApiKeyRepository(conn)
            if await keys.count_live_locked(caller.user_id) >= self._max_per_user:
                raise ApiKeyLimit(f"A user has at most {self._max_per_user} live API keys.")
            key_id = uuid.uuid4()
            minted = mint(key_id)
            stored = await keys.insert(
                key_id=key_id,
                user_id=caller.user_id,
                name=data.name,
                key_hash=minted.digest,
                preview=minted.preview,
                project_id=data.project_id,
                role=data.role,
                expires_at=data.expires_at,
            )
        return NewApiKey(**stored.model_dump(), key=minted.key)

    async def list(self, caller: Principal, *, page: PageRequest) -> Page[ApiKey]:
        _interactive(caller)
        async with self._db.connection() as conn:
            return await ApiKeyRepository(conn).list(caller.user_id, page=page)

    async def revoke(self, caller: Principal, key_id: uuid.UUID) -> None:
        if caller.key is not None and caller.key.key_id != key_id:
            raise ApiKeyNotAllowed("An API key may revoke itself, and no other key.")
        async with self._db.transaction() as conn:
            if not await ApiKeyRepository(conn).revoke(key_id, user_id=caller.user_id):
                raise ApiKeyNotFound()

    async def authenticate(self, key: str, *, client: str | None) -> StoredApiKey:
        """The key's row if the key is valid; InvalidApiKey otherwise (one answer for unknown,
        wrong and revoked keys). Throttled once `client` has had too many keys refused."""
        self._failures.check(client)
        try:
            stored = await self._check(key)
        except InvalidApiKey:
            self._failures.refused(client)
            raise
        await self._touch(stored.id)
        return stored

    def introspect(self, caller: Principal) -> KeyScope:
        """What the caller's API key grants (ApiKeyNotFound when they call without one)."""
        if caller.key is None:
            raise ApiKeyNotFound("This request is not authenticated with an API key.")
        return caller.key

    async def _check(self, key: str) -> StoredApiKey:
        key_id = key_id_of(key)
        if key_id is None:
            raise InvalidApiKey(MALFORMED)
        async with self._db.connection() as conn:
            stored = await ApiKeyRepository(conn).get_for_check(key_id)
        matches = secrets.compare_digest(digest(key), stored.key_hash if stored else _NO_DIGEST)
        if stored is None or not matches or stored.revoked_at is not None:
            raise InvalidApiKey(REFUSED)
        if stored.expires_at is not None and stored.expires_at <= self._clock():
            raise InvalidApiKey(EXPIRED)
        return stored

    async def _touch(self, key_id: uuid.UUID) -> None:
        now = self._monotonic()
        last = self._touched.get(key_id)
        if last is not None and now - last < self._touch_interval:
            return
        self._touched.pop(key_id, None)
        self._touched[key_id] = now
        if len(self._touched) > MAX_REMEMBERED_TOUCHES:
            self._touched.popitem(last=False)
        async with self._db.connection() as conn:
            await ApiKeyRepository(conn).touch(key_id, interval=self._touch_interval)
