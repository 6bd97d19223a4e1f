"""The gateway in-process, with testsuite's mockserver standing in for the services.

`make_settings("gateway")` points auth_url, experiment_url and telemetry_url at the mockserver
prefixes /auth, /experiment and /telemetry_ingest.
"""

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway_service.app import create_app
from tests.gateway.gateway_api import access_token

AUTH = "/auth/api/v1/auth"
EXPERIMENT = "/experiment"
TELEMETRY = "/telemetry_ingest"

StartGateway = Callable[..., Awaitable[TestClient]]
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@pytest.fixture
def start_gateway(aiohttp_client, make_settings, get_free_port) -> StartGateway:
    """Starts a gateway with the test settings (plain-http cookies unless told otherwise), its
    public origin the address the client calls, and gives a client whose cookie jar keeps
    cookies of an IP host."""

    async def start(**overrides: Any) -> TestClient:
        port = get_free_port()
        settings = make_settings(
            "gateway",
            **{"cookie_secure": False, "public_origin": f"http://127.0.0.1:{port}", **overrides},
        )
        return await aiohttp_client(
            create_app(settings),
            server_kwargs={"port": port},
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )

    return start


@pytest.fixture
async def gateway(start_gateway) -> TestClient:
    return await start_gateway()


@dataclass
class AuthService:
    """The auth service's session routes on the mockserver. Every login and refresh hands out a
    new token pair; `me` answers for any bearer token and 401 without one."""

    mockserver: Any
    # As the auth service answers (the gateway's answer is checked against its document).
    me_body: dict[str, Any] = field(
        default_factory=lambda: {
            "id": "0b6f3c1e-8a4d-4f2b-9c7e-5d1a2b3c4d5e",
            "username": "ada",
            "email": "ada@example.org",
            "created_at": "2026-01-12T09:00:00.000001Z",
            "projects": [],
        }
    )
    issued: list[dict[str, Any]] = field(default_factory=list)
    login: Any = None
    refresh: Any = None
    logout: Any = None
    me: Any = None
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    def tokens(self, *, ttl: int = 900) -> dict[str, Any]:
        n = next(self._numbers)
        tokens = {
            "access_token": access_token(ttl=ttl, sid=f"session-{n}"),
            "refresh_token": f"refresh-{n}",
            "token_type": "Bearer",
            "expires_in": 900,
        }
        self.issued.append(tokens)
        return tokens

    def unauthorized(self, code: str = "unauthorized"):
        return self.mockserver.make_response(
            json={"type": "about:blank", "title": "Unauthorized", "status": 401, "code": code},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
            content_type="application/problem+json",
        )


@pytest.fixture
def auth_service(mockserver) -> AuthService:
    service = AuthService(mockserver)

    @mockserver.json_handler(f"{AUTH}/login")
    def _login(request):
        return service.tokens()

    @mockserver.json_handler(f"{AUTH}/refresh")
    def _refresh(request):
        return service.tokens()

    @mockserver.handler(f"{AUTH}/logout")
    def _logout(request):
        return mockserver.make_response(status=204)

    @mockserver.json_handler(f"{AUTH}/me")
    def _me(request):
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return service.unauthorized()
        return service.me_body

    service.login, service.refresh, service.logout, service.me = _login, _refresh, _logout, _me
    return service


@pytest.fixture
async def raw_upstream() -> AsyncIterator[Callable[[Script], Awaitable[str]]]:
    """A TCP server answering with the bytes a test scripts; the script gets each connection's
    reader, writer and number (0, 1, ...)."""
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> str:
        connections = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            number, connections = connections, connections + 1
            try:
                await script(reader, writer, number)
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")
