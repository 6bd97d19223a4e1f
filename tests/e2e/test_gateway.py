"""The real gateway over HTTPS in front of the real auth and experiment processes, used the way a
browser uses it: Secure cookies, CSRF double-submit, CORS, transparent refresh, rate limits, SSE.

The gateway serves TLS with a throwaway CA (trustme): a client never sends a Secure cookie back
over plain http. The telemetry upstream is a small SSE server in this test process, since the
telemetry service is outside the gateway under test.
"""

import time
import uuid
from http.cookies import SimpleCookie

import pytest
from yarl import URL

from auth_service.signing import SigningKeys
from tests.e2e.tls_gateway import (
    APP_ORIGIN,
    FOREIGN_ORIGIN,
    PASSWORD,
    SSE_PAUSE,
    Browser,
    claims,
    expect_json,
    set_cookies,
)


async def test_login_sets_secure_httponly_cookies_sent_back_over_https(browser, sign_up):
    username = await sign_up()

    response = await browser.login(username)

    assert response.status == 200
    cookies = set_cookies(response)
    for name in ("etp_access", "etp_refresh"):
        for path in ("/api", "/auth"):
            assert cookies[name, path]["secure"], (name, path)
            assert cookies[name, path]["httponly"], (name, path)
            assert cookies[name, path]["samesite"] == "Lax"
    assert cookies["csrf_token", "/"]["secure"]
    assert not cookies["csrf_token", "/"]["httponly"]  # the SPA reads it
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert set(browser.cookies("/auth/me")) == {"etp_access", "etp_refresh", "csrf_token"}
    async with browser.http.get("/auth/me") as me:
        assert (await expect_json(me, 200))["username"] == username


async def test_api_call_with_cookies_csrf_header_and_origin_works(logged_in):
    headers = logged_in.unsafe_headers()

    async with logged_in.http.post(
        "/api/v1/projects", json={"name": "Through the gateway"}, headers=headers
    ) as response:
        project = await expect_json(response, 201)
        assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    async with logged_in.http.post(
        "/api/v1/experiments",
        json={"project_id": project["id"], "name": "Wind tunnel"},
        headers={**headers, "X-Request-Id": "e2e-gateway-create"},
    ) as response:
        experiment = await expect_json(response, 201)
        assert response.headers["X-Request-Id"] == "e2e-gateway-create"
    async with logged_in.http.get(f"/api/v1/experiments/{experiment['id']}") as response:
        assert (await expect_json(response, 200))["name"] == "Wind tunnel"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("no_header", "csrf_token"),
        ("wrong_token", "csrf_token"),
        ("foreign_origin", "csrf_origin"),
    ],
)
async def test_cookie_call_without_valid_csrf_is_forbidden(logged_in, case, code):
    headers = logged_in.unsafe_headers()
    if case == "no_header":
        del headers["X-CSRF-Token"]
    elif case == "wrong_token":
        headers["X-CSRF-Token"] = "not-the-cookie-value"
    else:
        headers["Origin"] = FOREIGN_ORIGIN

    async with logged_in.http.post(
        "/api/v1/projects", json={"name": "Forged"}, headers=headers
    ) as response:
        problem = await expect_json(response, 403)

    assert response.content_type == "application/problem+json"
    assert problem["code"] == code
    # The SPA may read the refusal only when it comes from the allowed origin.
    readable = response.headers.get("Access-Control-Allow-Origin") == APP_ORIGIN
    assert readable is (case != "foreign_origin")
    async with logged_in.http.get("/api/v1/projects") as response:
        assert (await expect_json(response, 200))["items"] == []


async def test_bearer_call_without_cookies_needs_no_csrf(browser, sign_up, daemons):
    username = await sign_up()
    tokens = await daemons["auth"].post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert tokens.status == 200, tokens.text
    bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}

    async with browser.http.post(
        "/api/v1/projects", json={"name": "Scripted"}, headers=bearer
    ) as response:
        project = await expect_json(response, 201)
    async with browser.http.get(f"/api/v1/projects/{project['id']}", headers=bearer) as response:
        assert (await expect_json(response, 200))["name"] == "Scripted"
    assert browser.cookies() == {}


async def test_expired_access_token_is_refreshed_transparently(logged_in, daemons, jwt_keys_dir):
    old = logged_in.cookies()
    expired = SigningKeys.load(jwt_keys_dir).sign(
        {**claims(old["etp_access"]), "iat": int(time.time()) - 960, "exp": int(time.time()) - 60}
    )
    refused = await daemons["auth"].get(
        "/api/v1/projects", headers={"Authorization": f"Bearer {expired}"}
    )
    assert refused.status == 401  # the services would turn it away
    for path in ("/api", "/auth"):
        cookie: SimpleCookie = SimpleCookie()
        cookie["etp_access"] = expired
        cookie["etp_access"].update({"path": path, "secure": True, "httponly": True})
        logged_in.http.cookie_jar.update_cookies(cookie, URL(logged_in.base_url + path))
    assert logged_in.cookies()["etp_access"] == expired

    async with logged_in.http.get("/api/v1/projects") as response:
        await expect_json(response, 200)
        renewed = set_cookies(response)

    new_access = renewed["etp_access", "/api"]["value"]
    assert new_access != expired
    assert claims(new_access)["exp"] > time.time()
    assert renewed["etp_refresh", "/api"]["value"] != old["etp_refresh"]
    assert renewed["etp_access", "/api"]["secure"]
    assert logged_in.cookies()["etp_access"] == new_access
    async with logged_in.http.get("/api/v1/projects") as response:
        await expect_json(response, 200)
        assert "Set-Cookie" not in response.headers  # no second refresh


async def test_logout_then_api_is_unauthorized(logged_in, daemons):
    refresh_token = logged_in.cookies()["etp_refresh"]

    async with logged_in.http.post("/auth/logout", headers=logged_in.unsafe_headers()) as response:
        assert response.status == 204
        cleared = set_cookies(response)

    assert cleared["etp_access", "/api"]["max-age"] == "0"
    assert logged_in.cookies() == {}
    async with logged_in.http.get("/api/v1/projects") as response:
        assert (await expect_json(response, 401))["code"]
    revoked = await daemons["auth"].post(
        "/api/v1/auth/refresh", json={"refresh_token": refresh_token}
    )
    assert revoked.status == 401


async def test_cors_preflight_from_allowed_origin_is_answered(browser):
    async with browser.http.options(
        "/api/v1/projects",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-csrf-token",
        },
    ) as response:
        assert response.status == 204

    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
    assert "x-csrf-token" in allowed_headers
    assert "content-type" in allowed_headers


async def test_cors_preflight_from_refused_origin_is_forbidden(browser):
    async with browser.http.options(
        "/api/v1/projects",
        headers={"Origin": FOREIGN_ORIGIN, "Access-Control-Request-Method": "POST"},
    ) as response:
        problem = await expect_json(response, 403)

    assert problem["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_login_over_burst_per_address_is_rate_limited(limited_gateway_url, client_ssl):
    limited = Browser(limited_gateway_url, client_ssl)
    try:
        statuses = []
        for _ in range(3):
            response = await limited.login(f"ghost{uuid.uuid4().hex[:8]}")  # a new name each
            statuses.append(response.status)
    finally:
        await limited.http.close()

    assert statuses == [401, 401, 429]
    assert int(response.headers["Retry-After"]) >= 1


async def test_sse_through_gateway_delivers_events_as_they_happen(logged_in, fake_telemetry):
    received: list[tuple[float, str]] = []
    started = time.monotonic()

    async with logged_in.http.get(
        "/api/v1/telemetry/stream", headers={"Accept": "text/event-stream"}
    ) as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        async for raw in response.content:
            received.append((time.monotonic(), raw.decode().rstrip("\n")))

    lines = [line for _, line in received]
    assert lines.count(": keep-alive") == 2
    assert lines.index("data: first") < lines.index("data: second")
    first_at = next(at for at, line in received if line == "data: first")
    assert fake_telemetry.second_sent_at is not None
    assert first_at - started < SSE_PAUSE / 2
    assert first_at < fake_telemetry.second_sent_at - SSE_PAUSE / 2
    assert fake_telemetry.authorizations[-1] == f"Bearer {logged_in.cookies()['etp_access']}"
