"""The auth middleware: which routes need a token, and the 401 answers."""

import base64
import time
import uuid
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from backend_common.app import create_base_app
from backend_common.auth import (
    CALLER,
    TOKEN_VERIFIER,
    TokenVerifier,
    auth_middleware,
)
from backend_common.http import json_response
from backend_common.settings import ServiceSettings
from tests.problems import assert_problem
from tests.tokens import SigningKey, jwks

ISSUER = "etp-auth"
AUDIENCE = "etp"
LEEWAY = 30
USER_ID = uuid.UUID("6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b")
JWKS_PATH = "/auth/.well-known/jwks.json"


class FakeJwks:
    """A JWKS fetcher publishing `keys` (tests change them), counting its calls."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.error: Exception | None = None
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return jwks(*self.keys)


@pytest.fixture(scope="module")
def ed_key():
    return SigningKey.generate("ed-1", "EdDSA")


@pytest.fixture(scope="module")
def es_key():
    return SigningKey.generate("es-1", "ES256")


@pytest.fixture
def fetcher(ed_key, es_key):
    return FakeJwks(ed_key, es_key)


@pytest.fixture
def make_verifier(fetcher):
    def make(fetch_jwks=fetcher, **overrides: Any) -> TokenVerifier:
        values: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "leeway": LEEWAY}
        return TokenVerifier(fetch_jwks=fetch_jwks, **(values | overrides))

    return make


@pytest.fixture
def verifier(make_verifier):
    return make_verifier()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(payload))}"


def valid_payload(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": str(USER_ID), "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 900}
    return claims | {"jti": "jti-1"} | overrides


def replace_char(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


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
