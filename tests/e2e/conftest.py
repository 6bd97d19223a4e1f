"""The gateway serving HTTPS with a throwaway CA (trustme), in front of the auth and experiment
daemons: a client never sends a Secure cookie back over plain http."""

import contextlib
import json
import ssl
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
import trustme
from aiohttp import web

from tests.e2e.tls_gateway import APP_ORIGIN, PASSWORD, Browser, FakeTelemetry
from tests.plugins.services import SERVICES, daemon_env, https_health_check


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def client_ssl(tls_ca) -> ssl.SSLContext:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def gateway_tls_env(tls_ca, tmp_path_factory) -> dict[str, str]:
    cert = tls_ca.issue_cert("localhost", "127.0.0.1")
    folder = tmp_path_factory.mktemp("gateway-tls")
    chain, key = folder / "chain.pem", folder / "key.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return {"GATEWAY_TLS_CERT_FILE": str(chain), "GATEWAY_TLS_KEY_FILE": str(key)}


@pytest.fixture(scope="session")
async def fake_telemetry(get_free_port) -> AsyncIterator[FakeTelemetry]:
    fake = FakeTelemetry(port=get_free_port())
    app = web.Application()
    app.router.add_get("/api/v1/telemetry/stream", fake.stream)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", fake.port).start()
    yield fake
    await runner.cleanup()


@pytest.fixture(scope="session")
async def tls_gateway_scopes(
    create_daemon_scope,
    get_free_port,
    daemon_ports,
    database_url,
    jwt_keys_dir,
    gateway_tls_env,
    client_ssl,
    fake_telemetry,
):
    """Gateway processes serving HTTPS, wired to the auth and experiment daemons: `main` (the
    login limit out of the way of the other tests) and `limited` (a login burst of 2)."""
    login_bursts = {"main": "1000", "limited": "2"}
    async with contextlib.AsyncExitStack() as stack:
        scopes = {}
        for name, burst in login_bursts.items():
            port = get_free_port()
            ports = {**daemon_ports, "gateway": port, "telemetry_ingest": fake_telemetry.port}
            url = f"https://127.0.0.1:{port}"
            scope = create_daemon_scope(
                args=[sys.executable, "-m", "gateway_service"],
                ping_url=None,
                health_check=https_health_check(f"{url}/ready", client_ssl),
                name=f"gateway_tls_{name}",
                env={
                    **daemon_env(SERVICES["gateway"], ports, database_url, jwt_keys_dir),
                    **gateway_tls_env,
                    "GATEWAY_ALLOWED_ORIGINS": json.dumps([APP_ORIGIN]),
                    "GATEWAY_LOGIN_BURST_PER_ADDRESS": burst,
                },
            )
            scopes[name] = (url, await stack.enter_async_context(scope))
        yield scopes


async def _ensure(ensure_daemon_started, scopes, name) -> str:
    url, scope = scopes[name]
    await ensure_daemon_started(scope)
    return url


@pytest.fixture
async def gateway_url(daemons, ensure_daemon_started, tls_gateway_scopes) -> str:
    return await _ensure(ensure_daemon_started, tls_gateway_scopes, "main")


@pytest.fixture
async def limited_gateway_url(daemons, ensure_daemon_started, tls_gateway_scopes) -> str:
    return await _ensure(ensure_daemon_started, tls_gateway_scopes, "limited")


@pytest.fixture
async def browser(gateway_url, client_ssl) -> AsyncIterator[Browser]:
    browser = Browser(gateway_url, client_ssl)
    yield browser
    await browser.http.close()


@pytest.fixture
def sign_up(daemons):
    """Registers a user at the auth daemon; gives the username (the password is PASSWORD)."""

    async def create() -> str:
        name = f"gw{uuid.uuid4().hex[:10]}"
        registered = await daemons["auth"].post(
            "/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
        )
        assert registered.status == 201, registered.text
        return name

    return create


@pytest.fixture
async def logged_in(browser, sign_up) -> Browser:
    response = await browser.login(await sign_up())
    assert response.status == 200
    return browser
