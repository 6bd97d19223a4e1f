"""CSRF checks on cookie sessions, and CORS for the allow-listed origins."""

import pytest

from gateway_service.settings import GatewaySettings
from tests.gateway.conftest import EXPERIMENT
from tests.gateway.gateway_api import access_token, log_in, own_origin, put_session
from tests.problems import assert_problem

ALLOWED = "https://app.example"
FOREIGN = "https://evil.example"
EXPERIMENTS = "/api/v1/experiments"


@pytest.fixture
def experiments(mockserver):
    @mockserver.json_handler(f"{EXPERIMENT}{EXPERIMENTS}")
    def handler(request):
        return mockserver.make_response(json={"id": "e1"}, status=201)

    return handler


@pytest.fixture
async def client(start_gateway):
    return await start_gateway(allowed_origins=[ALLOWED])


@pytest.fixture
async def csrf(client, auth_service):
    return await log_in(client)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
async def test_unsafe_call_with_token_and_own_origin_is_forwarded(
    client, csrf, experiments, method
):
    response = await client.request(
        method, EXPERIMENTS, json={}, headers={"Origin": own_origin(client), "X-CSRF-Token": csrf}
    )

    assert response.status == 201, await response.text()
    assert experiments.times_called == 1


async def test_unsafe_call_from_allowed_origin_with_token_is_forwarded(client, csrf, experiments):
    response = await client.post(
        EXPERIMENTS, json={}, headers={"Origin": ALLOWED, "X-CSRF-Token": csrf}
    )

    assert response.status == 201, await response.text()


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
async def test_unsafe_call_without_csrf_header_is_403(client, csrf, experiments, method):
    response = await client.request(
        method, EXPERIMENTS, json={}, headers={"Origin": own_origin(client)}
    )

    await assert_problem(response, 403, "csrf_token")
    assert experiments.times_called == 0


async def test_unsafe_call_wrong_csrf_token_is_403(client, csrf, experiments):
    response = await client.post(
        EXPERIMENTS, json={}, headers={"Origin": own_origin(client), "X-CSRF-Token": csrf + "x"}
    )

    await assert_problem(response, 403, "csrf_token")
    assert experiments.times_called == 0


async def test_unsafe_call_token_without_csrf_cookie_is_403(client, experiments):
    put_session(client, access=access_token(), refresh="r")
    client.session.cookie_jar.clear(lambda cookie: cookie.key == "csrf_token")

    response = await client.post(
        EXPERIMENTS, json={}, headers={"Origin": own_origin(client), "X-CSRF-Token": ""}
    )

    await assert_problem(response, 403, "csrf_token")


async def test_unsafe_call_foreign_origin_is_403_even_with_token(client, csrf, experiments):
    response = await client.post(
        EXPERIMENTS, json={}, headers={"Origin": FOREIGN, "X-CSRF-Token": csrf}
    )

    await assert_problem(response, 403, "csrf_origin")
    assert experiments.times_called == 0


async def test_unsafe_call_own_referer_without_origin_is_forwarded(client, csrf, experiments):
    response = await client.post(
        EXPERIMENTS,
        json={},
        headers={"Referer": f"{own_origin(client)}/experiments/new", "X-CSRF-Token": csrf},
    )

    assert response.status == 201, await response.text()


async def test_unsafe_call_foreign_referer_without_origin_is_403(client, csrf, experiments):
    response = await client.post(
        EXPERIMENTS, json={}, headers={"Referer": f"{FOREIGN}/page", "X-CSRF-Token": csrf}
    )

    await assert_problem(response, 403, "csrf_origin")


@pytest.mark.parametrize("origin", [None, "null"])
async def test_unsafe_call_without_origin_or_referer_is_403(client, csrf, experiments, origin):
    headers = {"X-CSRF-Token": csrf} | ({"Origin": origin} if origin else {})

    response = await client.post(EXPERIMENTS, json={}, headers=headers)

    await assert_problem(response, 403, "csrf_origin")
    assert experiments.times_called == 0


async def test_safe_call_with_cookies_needs_no_csrf_token(client, csrf, mockserver):
    @mockserver.json_handler(f"{EXPERIMENT}{EXPERIMENTS}")
    def _experiments(request):
        return {"items": [], "next_cursor": None}

    response = await client.get(EXPERIMENTS, headers={"Origin": FOREIGN})

    assert response.status == 200, await response.text()


async def test_unsafe_call_bearer_client_without_cookies_needs_no_csrf(client, experiments):
    token = access_token()

    response = await client.post(EXPERIMENTS, json={}, headers={"Authorization": f"Bearer {token}"})

    assert response.status == 201, await response.text()
    assert experiments.next_call()["request"].headers["Authorization"] == f"Bearer {token}"


async def test_unsafe_call_without_session_is_forwarded_for_the_service_to_refuse(
    client, mockserver
):
    @mockserver.json_handler(f"{EXPERIMENT}{EXPERIMENTS}")
    def experiments(request):
        return mockserver.make_response(json={"code": "unauthorized"}, status=401)

    response = await client.post(EXPERIMENTS, json={})

    assert response.status == 401
    assert "Authorization" not in experiments.next_call()["request"].headers


async def test_preflight_from_allowed_origin_is_answered_by_gateway(client):
    response = await client.options(
        EXPERIMENTS,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-csrf-token",
        },
    )

    assert response.status == 204, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert methods == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    allowed_headers = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"content-type", "x-csrf-token", "authorization", "x-request-id"} <= allowed_headers
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers.getall("Vary")


async def test_preflight_from_refused_origin_is_403(client):
    response = await client.options(
        EXPERIMENTS, headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"}
    )

    await assert_problem(response, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_preflight_for_auth_routes_is_answered(client):
    response = await client.options(
        "/auth/login", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    )

    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_proxied_call_from_allowed_origin_gets_cors_headers(client, mockserver):
    @mockserver.json_handler(f"{EXPERIMENT}{EXPERIMENTS}")
    def _experiments(request):
        return {"items": [], "next_cursor": None}

    response = await client.get(EXPERIMENTS, headers={"Origin": ALLOWED})

    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Request-Id", "Location", "Retry-After"} <= exposed
    assert "Origin" in response.headers.getall("Vary")


async def test_error_answer_to_allowed_origin_gets_cors_headers(client, csrf):
    # Without them the SPA on another origin could not read why its call failed.
    response = await client.post(EXPERIMENTS, json={}, headers={"Origin": ALLOWED})

    await assert_problem(response, 403, "csrf_token")
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


async def test_login_from_allowed_origin_gets_cors_headers(client, auth_service):
    response = await client.post(
        "/auth/login", json={"username": "ada", "password": "pw"}, headers={"Origin": ALLOWED}
    )

    assert response.status == 200, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_call_from_refused_origin_gets_no_cors_headers(client, mockserver):
    @mockserver.json_handler(f"{EXPERIMENT}{EXPERIMENTS}")
    def _experiments(request):
        return {"items": [], "next_cursor": None}

    response = await client.get(EXPERIMENTS, headers={"Origin": FOREIGN})

    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_same_origin_call_gets_no_cors_headers(client, mockserver):
    @mockserver.json_handler(f"{EXPERIMENT}{EXPERIMENTS}")
    def _experiments(request):
        return {}

    response = await client.get(EXPERIMENTS, headers={"Origin": own_origin(client)})

    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    "claimed",
    [{"Origin": "http://evil.example"}, {"Referer": "http://evil.example/page"}],
)
async def test_unsafe_call_whose_host_matches_its_foreign_origin_is_403(
    client, csrf, experiments, claimed
):
    # The Host header is the client's to write: the origin it names is not the gateway's.
    response = await client.post(
        EXPERIMENTS, json={}, headers={"Host": "evil.example", "X-CSRF-Token": csrf, **claimed}
    )

    await assert_problem(response, 403, "csrf_origin")
    assert experiments.times_called == 0


async def test_login_whose_host_matches_its_foreign_origin_is_403(client, auth_service):
    response = await client.post(
        "/auth/login",
        json={"username": "ada", "password": "pw"},
        headers={"Host": "evil.example", "Origin": "http://evil.example"},
    )

    await assert_problem(response, 403, "csrf_origin")
    assert auth_service.login.times_called == 0


async def test_preflight_whose_host_matches_its_foreign_origin_is_403(client):
    response = await client.options(
        EXPERIMENTS,
        headers={
            "Host": "evil.example",
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
        },
    )

    await assert_problem(response, 403, "origin_not_allowed")


async def test_unsafe_call_from_configured_public_origin_is_forwarded(
    start_gateway, auth_service, experiments
):
    client = await start_gateway(public_origin="https://ETP.example:443/")
    csrf = await log_in(client)

    response = await client.post(
        EXPERIMENTS, json={}, headers={"Origin": "https://etp.example", "X-CSRF-Token": csrf}
    )
    own = await client.post(
        EXPERIMENTS, json={}, headers={"Origin": own_origin(client), "X-CSRF-Token": csrf}
    )

    assert response.status == 201, await response.text()
    await assert_problem(own, 403, "csrf_origin")
    assert experiments.times_called == 1


@pytest.mark.parametrize(
    ("settings", "origin"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"port": 8443, "tls_cert_file": "chain.pem"}, "https://127.0.0.1:8443"),
        ({"public_origin": "http://Localhost:80"}, "http://localhost"),
        ({"public_origin": "https://etp.example:8443/"}, "https://etp.example:8443"),
    ],
)
def test_public_origin_setting_default_and_normal_form(settings, origin):
    assert GatewaySettings(**settings).own_origin() == origin


@pytest.mark.parametrize(
    "value", ["etp.example", "ftp://etp.example", "https://etp.example/app", "https://u@etp.ex"]
)
def test_public_origin_setting_not_an_origin_is_refused(value):
    with pytest.raises(ValueError, match="not an origin"):
        GatewaySettings(public_origin=value)
