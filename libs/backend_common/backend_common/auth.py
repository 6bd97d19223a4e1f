"""Access-token verification for every service: JWTs signed by the auth service, checked locally.

The verifier holds the auth service's public keys (JWKS), fetched once and refetched when a token
names an unknown `kid` (at most once per `min_refetch_interval`, so forged kids cannot hammer the
auth service). The key set is also refetched once it is `refresh_interval` old, so a key removed
from the auth service stops verifying here, remembered tokens signed with it included, within
that time; a failed refetch keeps the keys it had (and is retried after `min_refetch_interval`),
so a short outage of the auth service does not refuse every token.

Algorithms are pinned to the asymmetric ones the auth service signs with, so `none` and HS*
tokens (including HS256 keyed with a public key) never verify.

Time comes from two injected clocks: the time of day (`clock`) judges `exp`, `nbf` and `iat`, and
a monotonic one (`monotonic`) spaces the refetches; tests move both instead of waiting.

A bearer token that starts with `etpk_` is an API key, not a JWT: it goes to the app's
`API_KEY_VERIFIER` (the auth service checks its own keys; every other service asks the auth
service, see `backend_common.api_keys`), and a refused key gets the same 401 as a refused JWT.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import jwt
import orjson
from aiohttp import web

from backend_common.clock import Clock, utc_now
from backend_common.errors import ProblemError

if TYPE_CHECKING:
    from backend_common.api_keys import KeyScope

ALGORITHMS = ("EdDSA", "ES256")
REQUIRED_CLAIMS = ["sub", "iss", "aud", "iat", "exp", "jti"]
VERIFIED_CACHE_SIZE = 10_000

JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]
# Seconds that only ever grow (time.monotonic): for intervals, immune to changes of the time of day.
Monotonic = Callable[[], float]


class InvalidToken(Exception):
    """The access token is missing, malformed, forged, expired or not for us."""


@dataclass(frozen=True)
class AccessClaims:
    """Who a request comes from. `api_key` is set when the bearer token is an API key: what the
    key may reach (its project, its role cap); `expires_at` is then the key's own expiry."""

    user_id: uuid.UUID
    token_id: str
    session_id: str | None
    expires_at: int
    token: str
    api_key: KeyScope | None = None


class TokenVerifier:
    def __init__(
        self,
        *,
        fetch_jwks: JwksFetcher,
        issuer: str,
        audience: str,
        leeway: float = 30.0,
        algorithms: Iterable[str] = ALGORITHMS,
        min_refetch_interval: float = 10.0,
        refresh_interval: float = 300.0,
        clock: Clock = utc_now,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self._fetch_jwks = fetch_jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._algorithms = list(algorithms)
        self._min_refetch_interval = min_refetch_interval
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._monotonic = monotonic
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # the last try
        self._loaded_at: float | None = None  # the last success
        self._fetch_error: str | None = None
        self._lock = asyncio.Lock()
        # token → its claims and the kid of the key that verified it
        self._verified: OrderedDict[str, tuple[AccessClaims, str]] = OrderedDict()

    async def verify(self, token: str) -> AccessClaims:
        """The token's claims; a token verified before is answered from memory until it expires
        (a client sends the same token with every request, and the signature check dominates)."""
        if self._is_stale():
            async with self._lock:
                if self._is_stale():
                    await self._refresh()
        remembered = self._verified.get(token)
        if remembered is not None:
            claims, kid = remembered
            if kid in self._keys and claims.expires_at + self._leeway > self._now():
                self._verified.move_to_end(token)
                return claims
            del self._verified[token]
        claims, kid = await self._verify(token)
        self._verified[token] = (claims, kid)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    async def _verify(self, token: str) -> tuple[AccessClaims, str]:
        claims, kid = await self._decode(token, self._audience)
        expires_at = self._check_times(claims)
        try:
            user_id = uuid.UUID(claims["sub"])
        except (ValueError, TypeError):
            raise InvalidToken("subject is not a user id") from None
        return AccessClaims(
            user_id=user_id,
            token_id=str(claims["jti"]),
            session_id=claims.get("sid"),
            expires_at=expires_at,
            token=token,
        ), kid

    async def verify_service(self, token: str, *, audience: str) -> dict[str, Any]:
        """The claims of a token the auth service signed for a call between services
        (backend_common.service_tokens): same keys and checks, another audience, so an access
        token is never taken for one nor the other way round. Not remembered: each is new."""
        claims, _ = await self._decode(token, audience)
        self._check_times(claims)
        return claims

    async def _decode(self, token: str, audience: str) -> tuple[dict[str, Any], str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise InvalidToken(f"algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token has no key id")
        key = await self._key(kid)
        if key.algorithm_name != algorithm:
            raise InvalidToken("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=audience,
                issuer=self._issuer,
                # PyJWT would judge these by the real time of day; _check_times uses our clock.
                options={
                    "require": REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        return claims, kid

    def _check_times(self, claims: dict[str, Any]) -> int:
        """Refuses a token issued or valid only in the future, or expired, give or take the
        leeway; returns its `exp`. Same rules and messages as PyJWT's own checks."""
        try:
            issued_at = int(claims["iat"])
            expires_at = int(claims["exp"])
            not_before = int(claims["nbf"]) if "nbf" in claims else None
        except (ValueError, TypeError, OverflowError):
            raise InvalidToken("iat, nbf and exp must be integers") from None
        now = self._now()
        if issued_at > now + self._leeway:
            raise InvalidToken("The token is not yet valid (iat)")
        if not_before is not None and not_before > now + self._leeway:
            raise InvalidToken("The token is not yet valid (nbf)")
        if expires_at <= now - self._leeway:
            raise InvalidToken("Signature has expired")
        return expires_at

    def _now(self) -> float:
        return self._clock().timestamp()

    async def _key(self, kid: str) -> jwt.PyJWK:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys and self._may_refetch():
                await self._refresh()
        if kid in self._keys:
            return self._keys[kid]
        if self._fetch_error is not None:
            # The keys could not be loaded, so the token may well be valid: not a 401.
            raise ProblemError(503, "auth_keys_unavailable", self._fetch_error)
        raise InvalidToken(f"unknown key id {kid!r}")

    def _is_stale(self) -> bool:
        """The keys were loaded `refresh_interval` ago (or never could be, after a first try)."""
        return (
            self._fetched_at is not None
            and (
                self._loaded_at is None
                or self._monotonic() - self._loaded_at >= self._refresh_interval
            )
            and self._may_refetch()
        )

    def _may_refetch(self) -> bool:
        return (
            self._fetched_at is None
            or self._monotonic() - self._fetched_at >= self._min_refetch_interval
        )

    async def _refresh(self) -> None:
        self._fetched_at = self._monotonic()
        try:
            jwks = await self._fetch_jwks()
            if not isinstance(jwks, dict):
                raise ValueError("the JWKS is not a JSON object")
            keys = jwt.PyJWKSet.from_dict(jwks).keys
        except (OSError, aiohttp.ClientError, jwt.PyJWTError, ValueError) as exc:
            self._fetch_error = f"Could not load the token keys: {exc}"
            return
        self._fetch_error = None
        self._loaded_at = self._fetched_at
        self._keys = {key.key_id: key for key in keys if key.key_id}


def jwks_from_url(session: aiohttp.ClientSession, url: str) -> JwksFetcher:
    async def fetch() -> dict[str, Any]:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
            response.raise_for_status()
            return orjson.loads(await response.read())

    return fetch


def jwks_from_file(path: Path) -> JwksFetcher:
    async def fetch() -> dict[str, Any]:
        return orjson.loads(await asyncio.to_thread(path.read_bytes))

    return fetch


API_KEY_PREFIX = "etpk_"


class ApiKeyVerifier(Protocol):
    async def verify(self, key: str, request: web.Request) -> AccessClaims:
        """The claims of a valid API key; InvalidToken (or a problem: 429, 503) otherwise."""
        ...


TOKEN_VERIFIER = web.AppKey("token_verifier", TokenVerifier)
API_KEY_VERIFIER = web.AppKey("api_key_verifier", ApiKeyVerifier)
# The routes of create_base_app: probes and the spec never need a token.
BASE_PUBLIC_ROUTES = frozenset({"health", "ready", "openapi_spec"})
CALLER = web.RequestKey("caller", AccessClaims)


CHALLENGE = 'Bearer realm="etp"'
INVALID_TOKEN_CHALLENGE = f'{CHALLENGE}, error="invalid_token"'


def _unauthorized(detail: str, *, error: str | None) -> ProblemError:
    challenge = CHALLENGE + (f', error="{error}"' if error else "")
    return ProblemError(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Send an access token as `Authorization: Bearer <token>`.", error=None)
    return token.strip()


async def authenticate(request: web.Request) -> AccessClaims:
    token = bearer_token(request)
    if token.startswith(API_KEY_PREFIX):
        verifier = request.app.get(API_KEY_VERIFIER)
        try:
            if verifier is None:
                raise InvalidToken("API keys are not accepted here.")
            return await verifier.verify(token, request)
        except InvalidToken as exc:
            raise _unauthorized(str(exc), error="invalid_token") from None
    try:
        return await request.app[TOKEN_VERIFIER].verify(token)
    except InvalidToken as exc:
        raise _unauthorized(f"Invalid access token: {exc}.", error="invalid_token") from None


def invalid_token(detail: str) -> ProblemError:
    """The 401 of a refused token, for checks outside the middleware (e.g. a key revoked while
    its verification was cached)."""
    return _unauthorized(detail, error="invalid_token")


def auth_middleware(public_routes: Iterable[str]) -> Any:
    """Every matched route needs a valid access token unless its name is in `public_routes`."""
    public = BASE_PUBLIC_ROUTES | frozenset(public_routes)

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route
        if request.match_info.http_exception is None and route.name not in public:
            request[CALLER] = await authenticate(request)
        return await handler(request)

    return middleware
