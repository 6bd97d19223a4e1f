"""Calls one service makes to another on its own behalf, not a user's (docs/operations.md,
"Calls between services").

The auth service signs a short-lived JWT with its access-token keys, for another audience
(`internal_audience`, default `etp-internal`), naming itself as `sub` and what the call may do
as `scope` (space-separated). The receiving service checks it with the JWKS it already fetches
for access tokens (TokenVerifier.verify_service): no new secret to distribute or rotate, and
because the audience differs, a user's access token is never taken for a service token, nor
a service token for a user's. The routes that take them are under `/internal/`, which the
gateway does not forward.
"""

import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from backend_common.auth import TOKEN_VERIFIER, InvalidToken, bearer_token, invalid_token
from backend_common.errors import ProblemError

INTERNAL_AUDIENCE = "etp-internal"
# Auth tells the experiment service that projects were deleted.
PROJECT_DELETIONS_SCOPE = "project-deletions"


@dataclass(frozen=True)
class ServiceCaller:
    service: str
    scopes: frozenset[str]


def service_token_claims(
    *, service: str, scope: str, issuer: str, audience: str, now: int, ttl: int = 60
) -> dict[str, Any]:
    return {
        "sub": service,
        "scope": scope,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }


async def service_caller(request: web.Request, *, audience: str, scope: str) -> ServiceCaller:
    """The service calling (401 without a valid service token, 403 without `scope`)."""
    token = bearer_token(request)
    try:
        claims = await request.app[TOKEN_VERIFIER].verify_service(token, audience=audience)
    except InvalidToken as exc:
        raise invalid_token(f"Invalid service token: {exc}.") from None
    scopes = frozenset(str(claims.get("scope", "")).split())
    if scope not in scopes:
        raise ProblemError(403, "forbidden", f"This call needs the {scope!r} scope.")
    return ServiceCaller(service=str(claims["sub"]), scopes=scopes)
