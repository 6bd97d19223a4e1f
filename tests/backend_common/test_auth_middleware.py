"""The auth middleware: which routes need a token, and the 401 answers."""

import aiohttp
import pytest
from aiohttp import web

from backend_common.app import create_base_app
from backend_common.auth import (
    CALLER,
    TOKEN_VERIFIER,
    auth_middleware,
)
from backend_common.http import json_response
from backend_common.settings import ServiceSettings
from tests.backend_common.verifier_kit import LEEWAY, USER_ID
from tests.problems import assert_problem
from tests.tokens import SigningKey

# --- middleware ---------------------------------------------------------------------------------

routes = web.RouteTableDef()


@routes.get("/whoami", name="whoami")
async def whoami(request: web.Request) -> web.Response:
    return json_response({"user_id": str(request[CALLER].user_id)})


@routes.get("/public", name="public_thing")
async def public_thing(request: web.Request) -> web.Response:
    return json_response({"public": True})


@pytest.fixture
async def client(aiohttp_client, verifier):
    settings = ServiceSettings(service_name="gateway", port=0)
    app = create_base_app(settings, extra_middlewares=(auth_middleware({"public_thing"}),))
    app[TOKEN_VERIFIER] = verifier
    app.router.add_routes(routes)
    return await aiohttp_client(app)


async def test_protected_route_valid_token_answers_caller(client, ed_key):
    response = await client.get(
        "/whoami", headers={"Authorization": f"Bearer {ed_key.mint(USER_ID)}"}
    )

    assert response.status == 200
    assert await response.json() == {"user_id": str(USER_ID)}


async def test_protected_route_token_past_its_expiry_is_401(client, clock, ed_key):
    headers = {"Authorization": f"Bearer {ed_key.mint(USER_ID, ttl=900)}"}
    assert (await client.get("/whoami", headers=headers)).status == 200
    clock.advance(900 + LEEWAY)

    response = await client.get("/whoami", headers=headers)

    body = await assert_problem(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "Signature has expired" in body["detail"]


async def test_protected_route_token_of_key_removed_from_auth_is_401_within_refresh_interval(
    client, clock, fetcher, ed_key
):
    headers = {"Authorization": f"Bearer {ed_key.mint(USER_ID, ttl=3600)}"}
    assert (await client.get("/whoami", headers=headers)).status == 200
    fetcher.keys.remove(ed_key)
    clock.advance(300)

    response = await client.get("/whoami", headers=headers)

    body = await assert_problem(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "unknown key id" in body["detail"]


async def test_protected_route_lowercase_scheme_answers_caller(client, ed_key):
    response = await client.get(
        "/whoami", headers={"Authorization": f"bearer {ed_key.mint(USER_ID)}"}
    )

    assert response.status == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
        pytest.param({"Authorization": "Bearer"}, id="bare-scheme"),
    ],
)
async def test_protected_route_without_bearer_token_is_401(client, headers):
    response = await client.get("/whoami", headers=headers)

    await assert_problem(response, 401, "unauthorized")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert "error=" not in challenge


async def test_protected_route_forged_token_is_401_invalid_token(client, ed_key):
    forged = SigningKey.generate(ed_key.kid).mint(USER_ID)

    response = await client.get("/whoami", headers={"Authorization": f"Bearer {forged}"})

    body = await assert_problem(response, 401, "unauthorized")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert 'error="invalid_token"' in challenge
    assert "Signature verification failed" in body["detail"]


async def test_protected_route_keys_unavailable_is_503(client, fetcher, ed_key):
    fetcher.error = aiohttp.ClientConnectionError("refused")

    response = await client.get(
        "/whoami", headers={"Authorization": f"Bearer {ed_key.mint(USER_ID)}"}
    )

    await assert_problem(response, 503, "auth_keys_unavailable")


@pytest.mark.parametrize("path", ["/public", "/health"])
async def test_public_route_without_token_answers(client, fetcher, path):
    response = await client.get(path)

    assert response.status == 200
    assert fetcher.calls == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("POST", "/whoami", 405, "method_not_allowed"),
    ],
)
async def test_unmatched_route_without_token_is_not_401(client, method, path, status, code):
    response = await client.request(method, path)

    await assert_problem(response, status, code)
