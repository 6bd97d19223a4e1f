"""Browser sessions in cookies: tokens in HttpOnly cookies, a readable CSRF token beside them.

The access and refresh tokens are each set twice, for Path=/api and Path=/auth, so the browser
sends them only where the gateway needs them (never with static files).
"""

import base64
import binascii
import functools
import hmac
import secrets
import time
from collections.abc import Mapping
from http.cookies import SimpleCookie
from types import MappingProxyType
from typing import Any

import orjson
from aiohttp import web

from gateway_service.settings import GatewaySettings

ACCESS_COOKIE = "etp_access"
REFRESH_COOKIE = "etp_refresh"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PATHS = ("/api", "/auth")
# Refresh a little before expiry, so the token does not lapse on its way to the service.
EXPIRY_MARGIN = 10


def _add_cookie(
    response: web.StreamResponse,
    name: str,
    value: str,
    *,
    path: str,
    max_age: int,
    secure: bool,
    httponly: bool,
) -> None:
    # One Set-Cookie header each: aiohttp's set_cookie keeps one cookie per name, and the
    # token cookies are set for two paths.
    cookie: SimpleCookie = SimpleCookie()
    cookie[name] = value
    morsel = cookie[name]
    morsel["path"] = path
    morsel["max-age"] = str(max_age)
    morsel["samesite"] = "Lax"
    morsel["secure"] = secure
    morsel["httponly"] = httponly
    response.headers.add("Set-Cookie", morsel.OutputString())


def set_session(response: web.StreamResponse, tokens: dict, settings: GatewaySettings) -> None:
    """Cookies for a token response of the auth service."""
    secure = settings.cookie_secure
    for path in TOKEN_PATHS:
        _add_cookie(
            response,
            ACCESS_COOKIE,
            tokens["access_token"],
            path=path,
            max_age=tokens["expires_in"],
            secure=secure,
            httponly=True,
        )
        _add_cookie(
            response,
            REFRESH_COOKIE,
            tokens["refresh_token"],
            path=path,
            max_age=settings.refresh_cookie_max_age,
            secure=secure,
            httponly=True,
        )
    _add_cookie(
        response,
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        path="/",
        max_age=settings.refresh_cookie_max_age,
        secure=secure,
        httponly=False,
    )


def clear_session(response: web.StreamResponse, *, secure: bool) -> None:
    for path in TOKEN_PATHS:
        for name in (ACCESS_COOKIE, REFRESH_COOKIE):
            _add_cookie(response, name, "", path=path, max_age=0, secure=secure, httponly=True)
    _add_cookie(response, CSRF_COOKIE, "", path="/", max_age=0, secure=secure, httponly=False)


def has_session(request: web.Request) -> bool:
    return ACCESS_COOKIE in request.cookies or REFRESH_COOKIE in request.cookies


def csrf_token_matches(request: web.Request) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), header.encode())


@functools.lru_cache(maxsize=4096)
def _unverified_claims(token: str) -> Mapping[str, Any]:
    """The token's claims, unchecked: only for decisions the upstream verifies again. Kept for
    the tokens seen last, as every request of a session carries the same one."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        claims = None
    return MappingProxyType(claims if isinstance(claims, dict) else {})


def expires_soon(token: str) -> bool:
    """Whether the access token's `exp` is past, or nearly."""
    exp = _unverified_claims(token).get("exp")
    return not isinstance(exp, int | float) or exp - EXPIRY_MARGIN <= time.time()


def session_key(token: str) -> str:
    """What the per-session rate limit counts by: the token's session id, else the token."""
    claims = _unverified_claims(token)
    return str(claims.get("sid") or claims.get("sub") or token)
