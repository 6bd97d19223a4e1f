"""Calls to the services on the browser's behalf, and the session's access token."""

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.keys import HTTP_CLIENT, REQUEST_ID
from backend_common.middlewares import REQUEST_ID_HEADER
from gateway_service.appkeys import GATEWAY_SETTINGS, REFRESHES, UPSTREAM_TIMEOUT
from gateway_service.session import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    clear_session,
    expires_soon,
    set_session,
)
from gateway_service.settings import GatewaySettings


def upstream_timeout(settings: GatewaySettings) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None,
        connect=settings.upstream_connect_timeout,
        sock_read=settings.upstream_read_timeout,
    )


async def call_auth(
    request: web.Request,
    method: str,
    path: str,
    *,
    json: Any = None,
    token: str | None = None,
) -> Any:
    """The auth service's JSON answer; its problem answers are passed on as they are."""
    headers = {REQUEST_ID_HEADER: request[REQUEST_ID]}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    url = request.app[GATEWAY_SETTINGS].auth_url.rstrip("/") + path
    try:
        async with request.app[HTTP_CLIENT].request(
            method, url, json=json, headers=headers, timeout=request.app[UPSTREAM_TIMEOUT]
        ) as response:
            raw = await response.read()
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise ProblemError(
            504, "upstream_timeout", "The auth service did not answer in time."
        ) from None
    except aiohttp.ClientError:
        raise ProblemError(
            502, "upstream_unavailable", "The auth service cannot be reached."
        ) from None
    body = orjson.loads(raw) if raw else None
    if response.status >= 400:
        problem = body if isinstance(body, dict) else {}
        raise ProblemError(
            response.status,
            problem.get("code", "upstream_error"),
            problem.get("detail"),
            errors=problem.get("errors"),
            headers={
                k: v
                for k, v in response.headers.items()
                if k in ("WWW-Authenticate", "Retry-After")
            },
        )
    return body


class Refreshes:
    """One refresh per refresh token at a time (and its result kept briefly): parallel requests
    of one browser that all find their access token expired must not present the same refresh
    token twice, which the auth service would take for token theft and end the session."""

    KEEP_SECONDS = 10.0

    def __init__(self) -> None:
        self._pending: dict[bytes, asyncio.Task[dict]] = {}
        self._done: dict[bytes, tuple[float, dict]] = {}

    async def refresh(self, request: web.Request, refresh_token: str) -> dict:
        key = hashlib.sha256(refresh_token.encode()).digest()
        now = time.monotonic()
        self._done = {k: v for k, v in self._done.items() if v[0] > now}
        if key in self._done:
            return self._done[key][1]
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(
                call_auth(
                    request, "POST", "/api/v1/auth/refresh", json={"refresh_token": refresh_token}
                )
            )
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        tokens = await asyncio.shield(task)
        self._done[key] = (time.monotonic() + self.KEEP_SECONDS, tokens)
        return tokens

    def forget(self, refresh_token: str) -> None:
        """After a logout the old refresh token must not be answered from memory."""
        self._done.pop(hashlib.sha256(refresh_token.encode()).digest(), None)


@dataclass
class SessionToken:
    """The access token to send on for a cookie session (None: pass the request as it is), and
    new tokens when it had to be refreshed on the way."""

    request: web.Request
    access_token: str | None
    renewed: dict | None = None

    def renew_cookies(self, response: web.StreamResponse) -> None:
        if self.renewed is not None:
            set_session(response, self.renewed, self.request.app[GATEWAY_SETTINGS])


async def session_token(request: web.Request) -> SessionToken:
    if "Authorization" in request.headers:
        return SessionToken(request, None)
    access = request.cookies.get(ACCESS_COOKIE)
    refresh = request.cookies.get(REFRESH_COOKIE)
    if (access and not expires_soon(access)) or not refresh:
        return SessionToken(request, access)
    tokens = await refresh_session(request, refresh)
    return SessionToken(request, tokens["access_token"], tokens)


async def refresh_session(request: web.Request, refresh_token: str) -> dict:
    """New tokens for the session; a refused refresh ends it, and its cookies go with the 401."""
    try:
        return await request.app[REFRESHES].refresh(request, refresh_token)
    except ProblemError as problem:
        if problem.status == 401:
            scratch = web.Response()
            clear_session(scratch, secure=request.app[GATEWAY_SETTINGS].cookie_secure)
            for value in scratch.headers.getall("Set-Cookie"):
                problem.headers.add("Set-Cookie", value)
        raise
