"""Browser sessions in cookies: tokens in HttpOnly cookies, a readable CSRF token beside them.

The access and refresh tokens are each set twice, for Path=/api and Path=/auth, so the browser
sends them only where the gateway needs them (never with static files).
"""

import hmac
import secrets
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any

from aiohttp import web

ACCESS_COOKIE = "etp_access"
REFRESH_COOKIE = "etp_refresh"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PATHS = ("/api", "/auth")


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


class SessionCookies:
    """Sets and clears a session's cookies. `secure` is off only for plain-http development;
    the refresh token and CSRF cookies live `refresh_max_age` seconds, the access token's as
    long as the token."""

    def __init__(self, *, secure: bool, refresh_max_age: int) -> None:
        self.secure = secure
        self.refresh_max_age = refresh_max_age

    def set(self, response: web.StreamResponse, tokens: Mapping[str, Any]) -> None:
        """Cookies for a token answer of the auth service."""
        for path in TOKEN_PATHS:
            _add_cookie(
                response,
                ACCESS_COOKIE,
                tokens["access_token"],
                path=path,
                max_age=tokens["expires_in"],
                secure=self.secure,
                httponly=True,
            )
            _add_cookie(
                response,
                REFRESH_COOKIE,
                tokens["refresh_token"],
                path=path,
                max_age=self.refresh_max_age,
                secure=self.secure,
                httponly=True,
            )
        _add_cookie(
            response,
            CSRF_COOKIE,
            secrets.token_urlsafe(32),
            path="/",
            max_age=self.refresh_max_age,
            secure=self.secure,
            httponly=False,
        )

    def clear(self, response: web.StreamResponse) -> None:
        for path in TOKEN_PATHS:
            for name in (ACCESS_COOKIE, REFRESH_COOKIE):
                _add_cookie(
                    response, name, "", path=path, max_age=0, secure=self.secure, httponly=True
                )
        _add_cookie(
            response, CSRF_COOKIE, "", path="/", max_age=0, secure=self.secure, httponly=False
        )


def has_session(request: web.Request) -> bool:
    return ACCESS_COOKIE in request.cookies or REFRESH_COOKIE in request.cookies


def csrf_token_matches(request: web.Request) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), header.encode())
