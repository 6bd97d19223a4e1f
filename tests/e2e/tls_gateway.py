"""What the gateway end-to-end tests share: a browser-like HTTPS client, a fake SSE upstream for
the telemetry routes, and readers for cookies and tokens."""

import asyncio
import base64
import ssl
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

APP_ORIGIN = "https://app.example.test"
FOREIGN_ORIGIN = "https://evil.example.test"
PASSWORD = "gateway end to end password"
SSE_PAUSE = 1.0


@dataclass
class FakeTelemetry:
    """Stands in for the telemetry service: an SSE stream with a pause between two events."""

    port: int
    authorizations: list[str] = field(default_factory=list)
    second_sent_at: float | None = None

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self.authorizations.append(request.headers.get("Authorization", ""))
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        await response.write(b": keep-alive\n\n")
        await response.write(b"id: 1\nevent: sample\ndata: first\n\n")
        await asyncio.sleep(SSE_PAUSE)
        await response.write(b": keep-alive\n\n")
        self.second_sent_at = time.monotonic()
        await response.write(b"id: 2\nevent: sample\ndata: second\n\n")
        await response.write_eof()
        return response


class Browser:
    """An HTTPS client with a cookie jar, trusting the test CA: what the SPA's browser does."""

    def __init__(self, base_url: str, client_ssl: ssl.SSLContext) -> None:
        self.base_url = base_url
        self.http = aiohttp.ClientSession(
            base_url,
            connector=aiohttp.TCPConnector(ssl=client_ssl),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )

    def cookies(self, path: str = "/api/v1/projects") -> dict[str, str]:
        """What the jar sends with a request to `path`."""
        sent = self.http.cookie_jar.filter_cookies(URL(self.base_url + path))
        return {name: morsel.value for name, morsel in sent.items()}

    def unsafe_headers(self) -> dict[str, str]:
        """What the SPA adds to an unsafe request: the CSRF token and its own Origin."""
        return {"X-CSRF-Token": self.cookies()["csrf_token"], "Origin": APP_ORIGIN}

    async def login(self, username: str) -> aiohttp.ClientResponse:
        async with self.http.post(
            "/auth/login",
            json={"username": username, "password": PASSWORD},
            headers={"Origin": APP_ORIGIN},
        ) as response:
            await response.read()
        return response


async def expect_json(response: aiohttp.ClientResponse, status: int) -> dict:
    body = await response.json(content_type=None)
    assert response.status == status, body
    return body


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def set_cookies(response: aiohttp.ClientResponse) -> dict[tuple[str, str], dict]:
    """The response's Set-Cookie headers by (name, path), with their attributes."""
    found = {}
    for header in response.headers.getall("Set-Cookie", []):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            found[name, morsel["path"]] = {
                "value": morsel.value,
                "secure": bool(morsel["secure"]),
                "httponly": bool(morsel["httponly"]),
                "samesite": morsel["samesite"],
                "max-age": morsel["max-age"],
            }
    return found
