"""Project roles for services other than auth: asked of the auth service, cached for a few seconds.

Roles are not in the access token (it carries only who the caller is). A service asks
`GET /api/v1/projects/{P}/membership` with the caller's own bearer token; the answer (a role and
the project's raw-value policy, or "not a member") is cached per (user, project) for `ttl` seconds;
for an API key per (user, key, project), as the auth service answers a key within its scope.
"""

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import aiohttp
import orjson
from aiohttp import web

from backend_common.auth import CALLER, AccessClaims, invalid_token
from backend_common.errors import DomainError, ProblemError
from backend_common.keys import REQUEST_ID


class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, minimum: "Role") -> bool:
        return self.rank >= minimum.rank


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.OWNER: 2}


@dataclass(frozen=True)
class Membership:
    """A member's role, and the project's raw-value policy: with `physical_only`, viewers see
    physical values only."""

    role: Role
    physical_only: bool = False

    @property
    def sees_raw(self) -> bool:
        return not self.physical_only or self.role.at_least(Role.EDITOR)


class NotAMember(DomainError):
    """Not found."""


class RoleTooLow(DomainError):
    """Your role in this project does not allow that."""


RBAC_ERRORS: dict[type[Exception], tuple[int, str]] = {
    NotAMember: (404, "not_found"),
    RoleTooLow: (403, "forbidden"),
}


class RoleSource(Protocol):
    async def membership(
        self, caller: AccessClaims, project_id: uuid.UUID
    ) -> Membership | None: ...


class AuthServiceRoles:
    """Asks the auth service; bounded LRU cache of answers, each valid for `ttl` seconds."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth_url: str,
        *,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        timeout: float = 5.0,
    ) -> None:
        self._session = session
        self._auth_url = auth_url.rstrip("/")
        self._ttl = ttl
        self._max_entries = max_entries
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._cache: OrderedDict[
            tuple[uuid.UUID, uuid.UUID | None, uuid.UUID], tuple[float, Membership | None]
        ] = OrderedDict()

    async def membership(self, caller: AccessClaims, project_id: uuid.UUID) -> Membership | None:
        key = (caller.user_id, caller.api_key.key_id if caller.api_key else None, project_id)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        membership = await self._ask(caller, project_id)
        self._cache[key] = (now + self._ttl, membership)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return membership

    async def _ask(self, caller: AccessClaims, project_id: uuid.UUID) -> Membership | None:
        url = f"{self._auth_url}/api/v1/projects/{project_id}/membership"
        try:
            async with self._session.get(
                url, headers={"Authorization": f"Bearer {caller.token}"}, timeout=self._timeout
            ) as response:
                if response.status == 404:
                    return None
                if response.status == 401:
                    # The key was revoked (or expired) since it was verified.
                    raise invalid_token(_detail(await response.read()))
                if response.status != 200:
                    raise ProblemError(
                        503, "auth_unavailable", f"The auth service answered {response.status}."
                    )
                answer = orjson.loads(await response.read())
                return Membership(Role(answer["role"]), answer["physical_only"] is True)
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
            raise ProblemError(
                503, "auth_unavailable", f"Could not ask the auth service: {exc!r}"
            ) from None


def _detail(problem: bytes) -> str:
    try:
        detail = orjson.loads(problem).get("detail")
    except (ValueError, AttributeError):
        detail = None
    return detail if isinstance(detail, str) else "The auth service refused the token."


@dataclass(frozen=True)
class Caller:
    """Who is calling, and a way to learn their role in a project."""

    claims: AccessClaims
    roles: RoleSource
    request_id: str | None = None

    @property
    def user_id(self) -> uuid.UUID:
        return self.claims.user_id

    async def membership(self, project_id: uuid.UUID) -> Membership | None:
        """The caller's membership; through an API key, as far as the key's scope allows (the
        auth service answers so too: applied here again, whatever the role source)."""
        membership = await self.roles.membership(self.claims, project_id)
        scope = self.claims.api_key
        return scope.limit(project_id, membership) if scope is not None else membership

    async def role_in(self, project_id: uuid.UUID) -> Role | None:
        membership = await self.membership(project_id)
        return membership.role if membership is not None else None

    async def require(
        self,
        project_id: uuid.UUID,
        minimum: Role,
        *,
        not_found: type[DomainError] = NotAMember,
    ) -> Role:
        """The caller's role; `not_found` (a 404) outside the project, RoleTooLow (403) below it.

        Outside the project the resource does not exist for the caller, so the domain passes its
        own not-found error (e.g. RunNotFound) and the answer is the same as for a missing id.
        """
        role = await self.role_in(project_id)
        if role is None:
            raise not_found()
        if not role.at_least(minimum):
            raise RoleTooLow(f"This needs the {minimum} role; you are {role}.")
        return role


ROLES = web.AppKey("roles", RoleSource)


def caller(request: web.Request) -> Caller:
    """The authenticated caller of a request (the auth middleware ran)."""
    return Caller(
        claims=request[CALLER], roles=request.app[ROLES], request_id=request.get(REQUEST_ID)
    )
