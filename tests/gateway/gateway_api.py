"""Helpers for the gateway tests: JWT-shaped access tokens, Set-Cookie parsing, logging in.

The services behind the gateway are mocked, so nobody checks a token's signature: the gateway
itself only reads `exp` (and `sid`/`sub`) without verifying, which is all these tokens are for.
"""

import base64
import time
from http.cookies import Morsel, SimpleCookie
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestClient
from yarl import URL

LOGIN = "/auth/login"
REFRESH = "/auth/refresh"
LOGOUT = "/auth/logout"
ME = "/auth/me"
CREDENTIALS = {"username": "ada", "password": "correct horse battery"}
TOKEN_COOKIES = ("etp_access", "etp_refresh")
TOKEN_PATHS = ("/api", "/auth")


def jwt_shaped(**claims: Any) -> str:
    payload = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    return f"eyJhbGciOiJFZERTQSJ9.{payload}.c2lnbmF0dXJl"


def access_token(*, ttl: int = 900, sub: str = "user-1", **claims: Any) -> str:
    """A token that expires in `ttl` seconds (a negative `ttl`: expired that long ago)."""
    return jwt_shaped(sub=sub, exp=int(time.time()) + ttl, **claims)


def set_cookies(response: aiohttp.ClientResponse) -> dict[tuple[str, str], Morsel]:
    """The response's Set-Cookie headers by (name, path)."""
    cookies = {}
    for header in response.headers.getall("Set-Cookie", ()):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            cookies[(name, morsel["path"])] = morsel
    return cookies


def own_origin(client: TestClient) -> str:
    return f"http://{client.host}:{client.port}"


def raw_url(client: TestClient, path: str) -> URL:
    """The gateway's URL for `path` exactly as written: `client.get(path)` would resolve `..`
    segments before sending."""
    return URL(f"{own_origin(client)}{path}", encoded=True)


def put_session(
    client: TestClient,
    *,
    access: str | None,
    refresh: str | None,
    csrf: str = "csrf-token-of-the-test-session",
) -> str:
    """Cookies of a session as a login leaves them in the browser; returns the CSRF token."""
    wanted = [
        (name, value, path)
        for name, value in (("etp_access", access), ("etp_refresh", refresh))
        if value is not None
        for path in TOKEN_PATHS
    ]
    for name, value, path in [*wanted, ("csrf_token", csrf, "/")]:
        # One jar update per cookie: SimpleCookie keeps a single path per name.
        cookie: SimpleCookie = SimpleCookie()
        cookie[name] = value
        cookie[name]["path"] = path
        client.session.cookie_jar.update_cookies(cookie, client.make_url("/"))
    return csrf


async def log_in(client: TestClient, **credentials: str) -> str:
    """Logs in through the gateway; returns the CSRF token the login set."""
    response = await client.post(LOGIN, json={**CREDENTIALS, **credentials})
    assert response.status == 200, await response.text()
    return response.cookies["csrf_token"].value


def unsafe_headers(client: TestClient, csrf: str) -> dict[str, str]:
    """What the SPA sends with a POST: its own Origin and the CSRF token."""
    return {"Origin": own_origin(client), "X-CSRF-Token": csrf}
