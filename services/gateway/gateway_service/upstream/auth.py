"""Calls to the auth service's session routes on the browser's behalf."""

from typing import Any

import aiohttp
import orjson

from backend_common.errors import ProblemError
from backend_common.middlewares import REQUEST_ID_HEADER

Tokens = dict[str, Any]  # the auth service's token answer: access_token, refresh_token, ...


class AuthClient:
    """The auth service's JSON answers; its problem answers are passed on as they are."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=read_timeout
        )

    async def login(
        self, credentials: dict[str, Any], *, request_id: str, forwarded_for: str
    ) -> Tokens:
        """`forwarded_for` names the client: the auth service throttles logins per address and
        lets a user in from addresses they logged in from before."""
        tokens: Tokens = await self._call(
            "POST",
            "/api/v1/auth/login",
            request_id=request_id,
            json=credentials,
            extra_headers={"X-Forwarded-For": forwarded_for},
        )
        return tokens

    async def refresh(self, refresh_token: str, *, request_id: str) -> Tokens:
        tokens: Tokens = await self._call(
            "POST",
            "/api/v1/auth/refresh",
            request_id=request_id,
            json={"refresh_token": refresh_token},
        )
        return tokens

    async def logout(self, refresh_token: str, *, request_id: str) -> None:
        await self._call(
            "POST",
            "/api/v1/auth/logout",
            request_id=request_id,
            json={"refresh_token": refresh_token},
        )

    async def me(self, access_token: str | None, *, request_id: str) -> Any:
        """The user `access_token` belongs to (None: asked without a token, answered 401)."""
        return await self._call("GET", "/api/v1/auth/me", request_id=request_id, token=access_token)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        request_id: str,
        json: Any = None,
        token: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Any:
        headers = {REQUEST_ID_HEADER: request_id, **(extra_headers or {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._http.request(
                method, self._base_url + path, json=json, headers=headers, timeout=self._timeout
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
