"""Rate limits on login and per session, security headers, and cookies over HTTPS."""

import ssl

import aiohttp
import pytest
import trustme
from aiohttp import web

from gateway_service.app import create_app
from tests.gateway.conftest import EXPERIMENT
from tests.gateway.gateway_api import (
    CREDENTIALS,
    LOGIN,
    ME,
    access_token,
    log_in,
)
from tests.problems import assert_problem


async def test_login_over_burst_per_address_is_429_with_retry_after(start_gateway, auth_service):
    client = await start_gateway(login_burst_per_address=2, login_rate_per_address=0.1)

    statuses = [
        (await client.post(LOGIN, json={"username": f"user{n}", "password": "pw"})).status
        for n in range(2)
    ]
    third = await client.post(LOGIN, json={"username": "user3", "password": "pw"})

    assert statuses == [200, 200]
    await assert_problem(third, 429, "too_many_requests")
    assert int(third.headers["Retry-After"]) == 10
    assert auth_service.login.times_called == 2


async def test_login_failed_attempts_count_against_limit(start_gateway, auth_service, mockserver):
    client = await start_gateway(login_burst_per_address=2)

    @mockserver.json_handler("/auth/api/v1/auth/login")
    def _login(request):
        return auth_service.unauthorized("invalid_credentials")

    for _ in range(2):
        await assert_problem(await client.post(LOGIN, json=CREDENTIALS), 401, "invalid_credentials")
    await assert_problem(await client.post(LOGIN, json=CREDENTIALS), 429, "too_many_requests")


async def test_login_over_burst_per_username_is_429_whatever_the_case(start_gateway, auth_service):
    client = await start_gateway(login_burst_per_username=2)

    for username in ("ada", "ADA"):
        assert (
            await client.post(LOGIN, json={"username": username, "password": "pw"})
        ).status == 200
    refused = await client.post(LOGIN, json={"username": "Ada", "password": "pw"})
    other_user = await client.post(LOGIN, json={"username": "grace", "password": "pw"})

    await assert_problem(refused, 429, "too_many_requests")
    assert int(refused.headers["Retry-After"]) > 0
    assert other_user.status == 200


async def test_api_calls_over_burst_per_session_are_429_with_retry_after(
    start_gateway, auth_service, mockserver
):
    client = await start_gateway(api_burst_per_session=3, api_rate_per_session=0.5)
    await log_in(client)

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def experiments(request):
        return {}

    statuses = [(await client.get("/api/v1/experiments")).status for _ in range(3)]
    fourth = await client.get("/api/v1/experiments")

    assert statuses == [200, 200, 200]
    await assert_problem(fourth, 429, "too_many_requests")
    assert int(fourth.headers["Retry-After"]) == 2
    assert experiments.times_called == 3


async def test_api_calls_limit_counts_each_session_apart(start_gateway, mockserver):
    client = await start_gateway(api_burst_per_session=1, api_rate_per_session=0.5)

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def _experiments(request):
        return {}

    first = {"Authorization": f"Bearer {access_token(sid='s1')}"}
    second = {"Authorization": f"Bearer {access_token(sid='s2')}"}
    assert (await client.get("/api/v1/experiments", headers=first)).status == 200
    assert (await client.get("/api/v1/experiments", headers=second)).status == 200
    await assert_problem(
        await client.get("/api/v1/experiments", headers=first), 429, "too_many_requests"
    )


async def test_api_calls_limit_applies_to_bearer_clients(start_gateway, mockserver):
    client = await start_gateway(api_burst_per_session=2, api_rate_per_session=0.5)

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def _experiments(request):
        return {}

    headers = {"Authorization": f"Bearer {access_token()}"}
    for _ in range(2):
        assert (await client.get("/api/v1/experiments", headers=headers)).status == 200
    await assert_problem(
        await client.get("/api/v1/experiments", headers=headers), 429, "too_many_requests"
    )


def assert_security_headers(response: aiohttp.ClientResponse) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    server = response.headers["Server"]
    assert "aiohttp" not in server.lower()
    assert "python" not in server.lower()
    assert not any(char.isdigit() for char in server), server


async def test_any_answer_has_security_headers(gateway, auth_service, mockserver):
    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def _experiments(request):
        return mockserver.make_response(json={}, headers={"Server": "Python/3.11 aiohttp/3.14"})

    answers = [
        await gateway.get("/health"),
        await gateway.get("/openapi.yaml"),
        await gateway.post(LOGIN, json=CREDENTIALS),
        await gateway.get(ME),
        await gateway.get("/api/v1/experiments"),
        await gateway.get("/no/such/page"),
        await gateway.post("/auth/login", data=b"x", headers={"Content-Type": "text/plain"}),
        await gateway.options(
            "/api/v1/x",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        ),
    ]

    for response in answers:
        assert_security_headers(response)
        assert "Content-Security-Policy" not in response.headers, response.url
    assert "Strict-Transport-Security" not in answers[0].headers


async def test_streamed_answer_has_security_headers(start_gateway, aiohttp_server):
    async def stream(request):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: x\n\n")
        return response

    upstream = web.Application()
    upstream.router.add_get("/api/v1/telemetry/stream", stream)
    server = await aiohttp_server(upstream)
    client = await start_gateway(telemetry_url=str(server.make_url("")))

    response = await client.get(
        "/api/v1/telemetry/stream", headers={"Authorization": f"Bearer {access_token()}"}
    )

    assert response.status == 200
    assert_security_headers(response)


@pytest.fixture(scope="session")
def tls_ca():
    return trustme.CA()


@pytest.fixture
async def https_gateway(aiohttp_server, aiohttp_client, make_settings, tls_ca):
    """The gateway over TLS on loopback with its default settings, so Secure cookies are sent
    back as a browser would."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    tls_ca.configure_trust(client_context)
    settings = make_settings("gateway")
    assert settings.cookie_secure
    server = await aiohttp_server(create_app(settings), ssl=server_context)
    return await aiohttp_client(
        server,
        connector=aiohttp.TCPConnector(ssl=client_context),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )


async def test_login_over_https_secure_cookies_come_back(https_gateway, auth_service):
    login = await https_gateway.post(LOGIN, json=CREDENTIALS)
    assert login.status == 200, await login.text()
    assert all("; Secure" in header for header in login.headers.getall("Set-Cookie"))
    auth_service.me.flush()

    me = await https_gateway.get(ME)

    assert me.status == 200, await me.text()
    call = auth_service.me.next_call()["request"]
    assert call.headers["Authorization"] == f"Bearer {auth_service.issued[0]['access_token']}"


async def test_any_answer_over_https_has_hsts(https_gateway):
    response = await https_gateway.get("/health")

    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert_security_headers(response)


async def test_plain_http_client_does_not_send_secure_cookies(start_gateway, auth_service):
    # Why the cookie tests above need TLS: a client never sends a Secure cookie over http.
    client = await start_gateway(cookie_secure=True)
    await client.post(LOGIN, json=CREDENTIALS)

    response = await client.get(ME)

    await assert_problem(response, 401, "unauthorized")
