"""Browser sessions: log in, refresh, log out, who am I, and the transparent refresh on the way
to a service."""

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.gateway.conftest import EXPERIMENT
from tests.gateway.gateway_api import (
    CREDENTIALS,
    LOGIN,
    LOGOUT,
    ME,
    REFRESH,
    TOKEN_COOKIES,
    TOKEN_PATHS,
    access_token,
    log_in,
    own_origin,
    put_session,
    set_cookies,
    unsafe_headers,
)
from tests.problems import assert_problem


async def test_login_valid_credentials_sets_token_and_csrf_cookies(gateway, auth_service):
    response = await gateway.post(LOGIN, json=CREDENTIALS)

    assert response.status == 200, await response.text()
    tokens = auth_service.issued[0]
    cookies = set_cookies(response)
    assert set(cookies) == {
        *((name, path) for name in TOKEN_COOKIES for path in TOKEN_PATHS),
        ("csrf_token", "/"),
    }
    for path in TOKEN_PATHS:
        access, refresh = cookies[("etp_access", path)], cookies[("etp_refresh", path)]
        assert access.value == tokens["access_token"]
        assert refresh.value == tokens["refresh_token"]
        assert access["max-age"] == str(tokens["expires_in"])
        assert refresh["max-age"] == str(30 * 24 * 3600)
        for morsel in (access, refresh):
            assert morsel["httponly"] is True
            assert morsel["samesite"] == "Lax"
            assert not morsel["secure"]
    csrf = cookies[("csrf_token", "/")]
    assert len(csrf.value) >= 32
    assert not csrf["httponly"]
    assert csrf["samesite"] == "Lax"
    assert response.headers["Cache-Control"] == "no-store"


async def test_login_tells_the_auth_service_who_the_client_is(gateway, auth_service):
    response = await gateway.post(
        LOGIN, json=CREDENTIALS, headers={"X-Forwarded-For": "203.0.113.7"}
    )

    assert response.status == 200, await response.text()
    sent = auth_service.login.next_call()["request"].headers["X-Forwarded-For"]
    # What the client claimed, then the address the gateway saw (the auth service believes
    # only the entries its trusted proxies appended, from the right).
    assert sent == "203.0.113.7, 127.0.0.1"


async def test_login_refresh_cookie_max_age_follows_setting(start_gateway, auth_service):
    client = await start_gateway(refresh_cookie_max_age=3600)

    response = await client.post(LOGIN, json=CREDENTIALS)

    assert set_cookies(response)[("etp_refresh", "/api")]["max-age"] == "3600"


async def test_login_cookie_secure_on_marks_every_cookie_secure(start_gateway, auth_service):
    client = await start_gateway(cookie_secure=True)

    response = await client.post(LOGIN, json=CREDENTIALS)

    assert response.status == 200
    headers = response.headers.getall("Set-Cookie")
    assert len(headers) == 5
    for header in headers:
        assert "; Secure" in header, header


async def test_login_cookie_secure_off_sets_no_secure_attribute(gateway, auth_service):
    response = await gateway.post(LOGIN, json=CREDENTIALS)

    for header in response.headers.getall("Set-Cookie"):
        assert "secure" not in header.lower(), header


async def test_login_valid_credentials_answers_me_of_new_token(gateway, auth_service):
    response = await gateway.post(LOGIN, json=CREDENTIALS)

    assert await response.json() == auth_service.me_body
    login_call = auth_service.login.next_call()["request"]
    assert login_call.json == CREDENTIALS
    me_call = auth_service.me.next_call()["request"]
    assert me_call.headers["Authorization"] == f"Bearer {auth_service.issued[0]['access_token']}"


@pytest.mark.parametrize(
    "body",
    [{"username": "ada"}, {"username": "", "password": "pw"}, {**CREDENTIALS, "extra": 1}],
)
async def test_login_invalid_body_is_422_without_auth_call(gateway, auth_service, body):
    response = await gateway.post(LOGIN, json=body)

    await assert_problem(response, 422, "validation_failed")
    assert auth_service.login.times_called == 0


async def test_login_malformed_json_is_400(gateway, auth_service):
    response = await gateway.post(
        LOGIN, data=b'{"username": ', headers={"Content-Type": "application/json"}
    )

    await assert_problem(response, 400, "malformed_json")


async def test_login_body_over_limit_is_413(gateway, auth_service):
    body = b'{"username": "ada", "password": "' + b"x" * (1024 * 1024) + b'"}'

    response = await gateway.post(LOGIN, data=body, headers={"Content-Type": "application/json"})

    await assert_problem(response, 413, "payload_too_large")
    assert auth_service.login.times_called == 0


async def test_login_not_json_is_415(gateway, auth_service):
    response = await gateway.post(
        LOGIN, data="username=ada", headers={"Content-Type": "text/plain"}
    )

    await assert_problem(response, 415, "unsupported_media_type")


async def test_login_refused_by_auth_passes_401_through_without_cookies(
    gateway, auth_service, mockserver
):
    @mockserver.json_handler("/auth/api/v1/auth/login")
    def _login(request):
        return auth_service.unauthorized("invalid_credentials")

    response = await gateway.post(LOGIN, json=CREDENTIALS)

    await assert_problem(response, 401, "invalid_credentials")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Set-Cookie" not in response.headers


async def test_login_auth_down_is_502(start_gateway, get_free_port):
    client = await start_gateway(auth_url=f"http://127.0.0.1:{get_free_port()}")

    response = await client.post(LOGIN, json=CREDENTIALS)

    await assert_problem(response, 502, "upstream_unavailable")


async def test_login_foreign_origin_is_403(gateway, auth_service):
    response = await gateway.post(
        LOGIN, json=CREDENTIALS, headers={"Origin": "https://evil.example"}
    )

    await assert_problem(response, 403, "csrf_origin")
    assert auth_service.login.times_called == 0


async def test_login_foreign_referer_is_403(gateway, auth_service):
    response = await gateway.post(
        LOGIN, json=CREDENTIALS, headers={"Referer": "https://evil.example/login"}
    )

    await assert_problem(response, 403, "csrf_origin")


async def test_login_own_or_allowed_origin_is_accepted(start_gateway, auth_service):
    client = await start_gateway(allowed_origins=["https://app.example"])

    own = await client.post(LOGIN, json=CREDENTIALS, headers={"Origin": own_origin(client)})
    allowed = await client.post(LOGIN, json=CREDENTIALS, headers={"Origin": "https://app.example"})

    assert own.status == 200, await own.text()
    assert allowed.status == 200, await allowed.text()


async def test_login_without_origin_like_curl_is_accepted(gateway, auth_service):
    response = await gateway.post(LOGIN, json=CREDENTIALS)

    assert response.status == 200, await response.text()


async def test_refresh_with_cookie_sets_new_cookies(gateway, auth_service):
    csrf = await log_in(gateway)

    response = await gateway.post(REFRESH, headers=unsafe_headers(gateway, csrf))

    assert response.status == 200, await response.text()
    assert await response.json() == {"expires_in": 900}
    assert auth_service.refresh.next_call()["request"].json == {"refresh_token": "refresh-1"}
    cookies = set_cookies(response)
    new = auth_service.issued[1]
    for path in TOKEN_PATHS:
        assert cookies[("etp_access", path)].value == new["access_token"]
        assert cookies[("etp_refresh", path)].value == new["refresh_token"]
    assert ("csrf_token", "/") in cookies


async def test_refresh_without_cookie_is_401(gateway, auth_service):
    response = await gateway.post(REFRESH)

    await assert_problem(response, 401, "unauthorized")
    assert auth_service.refresh.times_called == 0


async def test_refresh_refused_by_auth_is_401(gateway, auth_service, mockserver):
    csrf = put_session(gateway, access=access_token(), refresh="revoked")

    @mockserver.json_handler("/auth/api/v1/auth/refresh")
    def _refresh(request):
        return auth_service.unauthorized("invalid_refresh_token")

    response = await gateway.post(REFRESH, headers=unsafe_headers(gateway, csrf))

    await assert_problem(response, 401, "invalid_refresh_token")
    assert {morsel["max-age"] for morsel in set_cookies(response).values()} == {"0"}


async def test_logout_with_session_revokes_and_clears_cookies(gateway, auth_service):
    csrf = await log_in(gateway)

    response = await gateway.post(LOGOUT, headers=unsafe_headers(gateway, csrf))

    assert response.status == 204, await response.text()
    assert auth_service.logout.next_call()["request"].json == {"refresh_token": "refresh-1"}
    cookies = set_cookies(response)
    assert set(cookies) == {
        *((name, path) for name in TOKEN_COOKIES for path in TOKEN_PATHS),
        ("csrf_token", "/"),
    }
    for morsel in cookies.values():
        assert morsel["max-age"] == "0"
        assert morsel.value == ""
    assert not gateway.session.cookie_jar.filter_cookies(gateway.make_url("/api/v1/x"))


async def test_logout_without_session_is_204_without_auth_call(gateway, auth_service):
    response = await gateway.post(LOGOUT)

    assert response.status == 204
    assert auth_service.logout.times_called == 0


async def test_me_with_session_cookie_asks_auth_with_bearer(gateway, auth_service):
    await log_in(gateway)
    auth_service.me.flush()

    response = await gateway.get(ME)

    assert response.status == 200, await response.text()
    assert await response.json() == auth_service.me_body
    call = auth_service.me.next_call()["request"]
    assert call.headers["Authorization"] == f"Bearer {auth_service.issued[0]['access_token']}"
    assert "Cookie" not in call.headers


async def test_me_without_session_is_401(gateway, auth_service):
    response = await gateway.get(ME)

    await assert_problem(response, 401, "unauthorized")


async def test_me_expired_access_token_refreshes_first(gateway, auth_service):
    put_session(gateway, access=access_token(ttl=-60), refresh="refresh-old")

    response = await gateway.get(ME)

    assert response.status == 200, await response.text()
    new = auth_service.issued[0]
    call = auth_service.me.next_call()["request"]
    assert call.headers["Authorization"] == f"Bearer {new['access_token']}"
    assert set_cookies(response)[("etp_access", "/auth")].value == new["access_token"]


async def test_api_call_expired_access_token_refreshes_and_renews_cookies(
    gateway, auth_service, mockserver
):
    put_session(gateway, access=access_token(ttl=-60), refresh="refresh-old")

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def experiments(request):
        return {"items": [], "next_cursor": None}

    response = await gateway.get("/api/v1/experiments")

    assert response.status == 200, await response.text()
    assert auth_service.refresh.next_call()["request"].json == {"refresh_token": "refresh-old"}
    new = auth_service.issued[0]
    forwarded = experiments.next_call()["request"]
    assert forwarded.headers["Authorization"] == f"Bearer {new['access_token']}"
    cookies = set_cookies(response)
    for path in TOKEN_PATHS:
        assert cookies[("etp_access", path)].value == new["access_token"]
        assert cookies[("etp_refresh", path)].value == new["refresh_token"]
    # The browser now holds the new pair: the next call needs no refresh.
    await gateway.get("/api/v1/experiments")
    assert auth_service.refresh.times_called == 0
    assert experiments.next_call()["request"].headers["Authorization"] == (
        f"Bearer {new['access_token']}"
    )


async def test_api_call_access_token_about_to_expire_refreshes(gateway, auth_service, mockserver):
    put_session(gateway, access=access_token(ttl=5), refresh="refresh-old")

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def _experiments(request):
        return {}

    response = await gateway.get("/api/v1/experiments")

    assert response.status == 200
    assert auth_service.refresh.times_called == 1


async def test_api_call_only_refresh_cookie_left_refreshes(gateway, auth_service, mockserver):
    put_session(gateway, access=None, refresh="refresh-old")

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def experiments(request):
        return {}

    response = await gateway.get("/api/v1/experiments")

    assert response.status == 200
    assert experiments.next_call()["request"].headers["Authorization"] == (
        f"Bearer {auth_service.issued[0]['access_token']}"
    )


async def test_api_calls_in_parallel_with_expired_token_refresh_once(
    gateway, auth_service, mockserver
):
    put_session(gateway, access=access_token(ttl=-60), refresh="refresh-old")

    @mockserver.json_handler("/auth/api/v1/auth/refresh")
    async def refresh(request):
        # Slow enough that every request finds the refresh still running.
        await asyncio.sleep(0.1)
        return auth_service.tokens()

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def experiments(request):
        return {}

    responses = await asyncio.gather(*(gateway.get("/api/v1/experiments") for _ in range(5)))

    assert [response.status for response in responses] == [200] * 5
    assert refresh.times_called == 1
    assert len(auth_service.issued) == 1
    new_token = f"Bearer {auth_service.issued[0]['access_token']}"
    for _ in range(5):
        assert experiments.next_call()["request"].headers["Authorization"] == new_token


async def test_api_call_old_cookies_soon_after_refresh_get_same_new_tokens(
    gateway, auth_service, mockserver
):
    # A second tab still sending the old cookies: presenting the spent refresh token again
    # would make the auth service revoke the whole session as stolen.
    expired = access_token(ttl=-60)

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def experiments(request):
        return {}

    answers = []
    for _ in range(2):
        gateway.session.cookie_jar.clear()
        put_session(gateway, access=expired, refresh="refresh-old")
        answers.append(await gateway.get("/api/v1/experiments"))

    assert auth_service.refresh.times_called == 1
    new = auth_service.issued[0]
    for response in answers:
        assert response.status == 200
        assert set_cookies(response)[("etp_access", "/api")].value == new["access_token"]
        assert experiments.next_call()["request"].headers["Authorization"] == (
            f"Bearer {new['access_token']}"
        )


async def test_api_call_old_cookies_after_logout_are_not_answered_from_memory(
    gateway, auth_service, mockserver
):
    expired = access_token(ttl=-60)

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def _experiments(request):
        return {}

    csrf = put_session(gateway, access=expired, refresh="refresh-old")
    assert (await gateway.get("/api/v1/experiments")).status == 200
    put_session(gateway, access=expired, refresh="refresh-old")
    logout = await gateway.post(LOGOUT, headers=unsafe_headers(gateway, csrf))
    assert logout.status == 204, await logout.text()
    put_session(gateway, access=expired, refresh="refresh-old")

    await gateway.get("/api/v1/experiments")

    assert auth_service.refresh.times_called == 2


async def test_api_call_refresh_refused_is_401_and_clears_cookies(
    gateway, auth_service, mockserver
):
    put_session(gateway, access=access_token(ttl=-60), refresh="refresh-revoked")

    @mockserver.json_handler("/auth/api/v1/auth/refresh")
    def _refresh(request):
        return auth_service.unauthorized("invalid_refresh_token")

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def experiments(request):
        return {}

    response = await gateway.get("/api/v1/experiments")

    await assert_problem(response, 401, "invalid_refresh_token")
    assert experiments.times_called == 0
    cookies = set_cookies(response)
    assert len(cookies) == 5
    assert all(morsel["max-age"] == "0" for morsel in cookies.values())
    assert not gateway.session.cookie_jar.filter_cookies(gateway.make_url("/api/v1/x"))


async def test_api_call_valid_access_token_does_not_refresh(gateway, auth_service, mockserver):
    token = access_token()
    put_session(gateway, access=token, refresh="refresh-old")

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def experiments(request):
        return {}

    response = await gateway.get("/api/v1/experiments")

    assert response.status == 200
    assert auth_service.refresh.times_called == 0
    assert "Set-Cookie" not in response.headers
    assert experiments.next_call()["request"].headers["Authorization"] == f"Bearer {token}"


@pytest.mark.parametrize("path", [REFRESH, LOGOUT])
async def test_session_route_with_cookies_but_no_csrf_token_is_403(gateway, auth_service, path):
    await log_in(gateway)

    response = await gateway.post(path, headers={"Origin": own_origin(gateway)})

    await assert_problem(response, 403, "csrf_token")
    assert auth_service.refresh.times_called == auth_service.logout.times_called == 0


@pytest.fixture
def rotating_refresh(auth_service, mockserver):
    """The auth service's refresh as it is: a refresh token works once, a spent one is 401."""
    spent: set[str] = set()

    @mockserver.json_handler("/auth/api/v1/auth/refresh")
    def refresh(request):
        token = request.json["refresh_token"]
        if token in spent:
            return auth_service.unauthorized("invalid_refresh_token")
        spent.add(token)
        return auth_service.tokens()

    return refresh


def assert_no_tokens_handed_out(response, body: str, auth_service) -> None:
    handed_out = {morsel.value for morsel in set_cookies(response).values()}
    for tokens in auth_service.issued:
        for secret in (tokens["access_token"], tokens["refresh_token"]):
            assert secret not in handed_out
            assert secret not in body


async def test_refresh_replay_of_spent_cookie_by_another_client_gets_no_tokens(
    gateway, auth_service, rotating_refresh
):
    csrf = await log_in(gateway)
    refreshed = await gateway.post(REFRESH, headers=unsafe_headers(gateway, csrf))
    assert refreshed.status == 200, await refreshed.text()
    # The attacker holds the spent refresh cookie, and a CSRF cookie and header of their own.
    gateway.session.cookie_jar.clear()
    attacker_csrf = put_session(gateway, access=None, refresh="refresh-1")
    assert attacker_csrf != csrf

    response = await gateway.post(REFRESH, headers=unsafe_headers(gateway, attacker_csrf))

    body = await response.text()
    await assert_problem(response, 401, "invalid_refresh_token")
    assert_no_tokens_handed_out(response, body, auth_service)
    assert rotating_refresh.times_called == 2


@pytest.mark.parametrize("csrf_cookie", ["another", None])
async def test_api_call_replaying_spent_refresh_cookie_gets_no_tokens(
    gateway, auth_service, rotating_refresh, mockserver, csrf_cookie
):
    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def experiments(request):
        return {}

    expired = access_token(ttl=-60)
    put_session(gateway, access=expired, refresh="refresh-old")
    assert (await gateway.get("/api/v1/experiments")).status == 200
    gateway.session.cookie_jar.clear()
    if csrf_cookie is None:
        put_session(gateway, access=expired, refresh="refresh-old")
        gateway.session.cookie_jar.clear(lambda cookie: cookie.key == "csrf_token")
    else:
        put_session(gateway, access=expired, refresh="refresh-old", csrf=csrf_cookie)

    response = await gateway.get("/api/v1/experiments")

    body = await response.text()
    await assert_problem(response, 401, "invalid_refresh_token")
    assert_no_tokens_handed_out(response, body, auth_service)
    assert experiments.times_called == 1


async def test_api_call_replaying_refresh_cookie_during_refresh_does_not_share_it(
    gateway, auth_service, mockserver
):
    spent: set[str] = set()

    @mockserver.json_handler("/auth/api/v1/auth/refresh")
    async def _refresh(request):
        token = request.json["refresh_token"]
        if token in spent:
            return auth_service.unauthorized("invalid_refresh_token")
        spent.add(token)
        await asyncio.sleep(0.2)  # the attacker's copy arrives meanwhile
        return auth_service.tokens()

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def _experiments(request):
        return {}

    attacker = TestClient(gateway.server, cookie_jar=aiohttp.CookieJar(unsafe=True))
    await attacker.start_server()
    expired = access_token(ttl=-60)
    put_session(gateway, access=expired, refresh="refresh-old")
    put_session(attacker, access=expired, refresh="refresh-old", csrf="the-attackers-own")

    own = asyncio.ensure_future(gateway.get("/api/v1/experiments"))
    await asyncio.sleep(0.05)
    try:
        stolen = await attacker.get("/api/v1/experiments")
        body = await stolen.text()
    finally:
        await attacker.session.close()

    assert (await own).status == 200
    await assert_problem(stolen, 401, "invalid_refresh_token")
    assert_no_tokens_handed_out(stolen, body, auth_service)
