"""The access token a cookie session sends on, refreshed on the way, once per refresh token."""

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass

from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.keys import REQUEST_ID
from gateway_service.browser.cookies import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    REFRESH_COOKIE,
    SessionCookies,
)
from gateway_service.browser.tokens import expires_soon
from gateway_service.upstream.auth import AuthClient, Tokens


class Refreshes:
    """One refresh per refresh token at a time (and its result kept briefly): parallel requests
    of one browser that all find their access token expired must not present the same refresh
    token twice, which the auth service would take for token theft and end the session.

    A result is shared only with requests that also carry the session's CSRF cookie (`client`):
    the refresh cookie alone, e.g. a spent one replayed from elsewhere, gets nothing from memory
    and goes to the auth service, which refuses it (and ends the session as stolen)."""

    KEEP_SECONDS = 10.0

    def __init__(self, auth: AuthClient) -> None:
        self._auth = auth
        self._pending: dict[bytes, tuple[bytes, asyncio.Task[Tokens]]] = {}
        self._done: dict[bytes, tuple[float, bytes, Tokens]] = {}

    async def refresh(self, refresh_token: str, *, client: str, request_id: str) -> Tokens:
        key = hashlib.sha256(refresh_token.encode()).digest()
        client_key = client.encode()
        now = time.monotonic()
        self._done = {k: v for k, v in self._done.items() if v[0] > now}
        done = self._done.get(key)
        if done is not None and _same_client(done[1], client_key):
            return done[2]
        pending = self._pending.get(key)
        if pending is not None and _same_client(pending[0], client_key):
            task = pending[1]
        elif done is not None or pending is not None:
            return await self._auth.refresh(refresh_token, request_id=request_id)
        else:
            task = asyncio.ensure_future(self._auth.refresh(refresh_token, request_id=request_id))
            self._pending[key] = (client_key, task)
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        tokens = await asyncio.shield(task)
        self._done[key] = (time.monotonic() + self.KEEP_SECONDS, client_key, tokens)
        return tokens

    def forget(self, refresh_token: str) -> None:
        """After a logout the old refresh token must not be answered from memory."""
        self._done.pop(hashlib.sha256(refresh_token.encode()).digest(), None)


def _same_client(kept: bytes, client: bytes) -> bool:
    """Whether a request comes from the browser a refresh was made for: same CSRF cookie, and
    one at all (without it nothing tells two clients apart)."""
    return bool(kept) and hmac.compare_digest(kept, client)


@dataclass
class SessionToken:
    """The access token to send on for a cookie session (None: pass the request as it is), and
    new tokens when it had to be refreshed on the way."""

    cookies: SessionCookies
    access_token: str | None
    renewed: Tokens | None = None

    def renew_cookies(self, response: web.StreamResponse) -> None:
        if self.renewed is not None:
            self.cookies.set(response, self.renewed)


class Sessions:
    """Browser sessions: their cookies, and their tokens kept fresh through the auth service."""

    def __init__(self, auth: AuthClient, cookies: SessionCookies) -> None:
        self._auth = auth
        self._refreshes = Refreshes(auth)
        self.cookies = cookies

    async def token(self, request: web.Request) -> SessionToken:
        if "Authorization" in request.headers:
            return SessionToken(self.cookies, None)
        access = request.cookies.get(ACCESS_COOKIE)
        refresh = request.cookies.get(REFRESH_COOKIE)
        if (access and not expires_soon(access)) or not refresh:
            return SessionToken(self.cookies, access)
        tokens = await self.refresh(request, refresh)
        return SessionToken(self.cookies, tokens["access_token"], tokens)

    async def refresh(self, request: web.Request, refresh_token: str) -> Tokens:
        """New tokens for the session; a refused refresh ends it, and its cookies go with the
        401."""
        try:
            return await self._refreshes.refresh(
                refresh_token,
                client=request.cookies.get(CSRF_COOKIE, ""),
                request_id=request[REQUEST_ID],
            )
        except ProblemError as problem:
            if problem.status == 401:
                scratch = web.Response()
                self.cookies.clear(scratch)
                for value in scratch.headers.getall("Set-Cookie"):
                    problem.headers.add("Set-Cookie", value)
            raise

    async def log_out(self, refresh_token: str, *, request_id: str) -> None:
        """Ends the session at the auth service; its refresh token is not answered from memory
        afterwards."""
        await self._auth.logout(refresh_token, request_id=request_id)
        self._refreshes.forget(refresh_token)
