"""GET /api/v1/auth/me, and the access tokens it refuses: forged or broken ones are 401."""

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable

import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from tests.auth.accounts_api import ME, auth_headers, service_key
from tests.problems import assert_problem
from tests.tokens import SigningKey


@pytest.fixture
def our_key(make_settings) -> SigningKey:
    return service_key(make_settings("auth").jwt_keys_dir)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(sub: str, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "sub": sub,
        "iss": "etp-auth",
        "aud": "etp",
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
        **overrides,
    }
    return {name: value for name, value in claims.items() if value is not None}


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"


def _hmac_signed(algorithm: str, secret: bytes, kid: str, claims: dict) -> str:
    """Hand-made, since PyJWT refuses to use a public key as an HMAC secret."""
    signing_input = _unsigned({"alg": algorithm, "typ": "JWT", "kid": kid}, claims)
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[algorithm]
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _public_pem(key: SigningKey) -> bytes:
    return key.public_pem()


def _public_raw(key: SigningKey) -> bytes:
    return key.private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _tamper_payload(token: str, sub: str) -> str:
    header, payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return ".".join([header, _b64(orjson.dumps({**claims, "sub": sub})), signature])


def _tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    # A middle character: the last one may only carry padding bits.
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return ".".join([header, payload, signature[:middle] + flipped + signature[middle + 1 :]])


Forger = Callable[[SigningKey, str], str]

FORGERIES: dict[str, Forger] = {
    "alg-none": lambda key, sub: _unsigned({"alg": "none", "kid": key.kid}, _claims(sub)) + ".",
    "alg-None": lambda key, sub: _unsigned({"alg": "None", "kid": key.kid}, _claims(sub)) + ".",
    "alg-none-with-signature": lambda key, sub: (
        _unsigned({"alg": "none", "kid": key.kid}, _claims(sub)) + "." + key.mint(sub).split(".")[2]
    ),
    "hs256-public-pem": lambda key, sub: _hmac_signed(
        "HS256", _public_pem(key), key.kid, _claims(sub)
    ),
    "hs256-public-raw": lambda key, sub: _hmac_signed(
        "HS256", _public_raw(key), key.kid, _claims(sub)
    ),
    "hs256-jwk-x": lambda key, sub: _hmac_signed(
        "HS256", key.jwk()["x"].encode(), key.kid, _claims(sub)
    ),
    "hs512-public-pem": lambda key, sub: _hmac_signed(
        "HS512", _public_pem(key), key.kid, _claims(sub)
    ),
    "expired": lambda key, sub: key.mint(sub, ttl=-120),
    "not-yet-valid": lambda key, sub: key.mint(sub, nbf=int(time.time()) + 600),
    "issued-in-future": lambda key, sub: key.mint(sub, iat=int(time.time()) + 600, ttl=1200),
    "wrong-aud": lambda key, sub: key.mint(sub, audience="other-app"),
    "wrong-iss": lambda key, sub: key.mint(sub, issuer="evil-auth"),
    "no-aud": lambda key, sub: key.mint(sub, audience=None),
    "no-iss": lambda key, sub: key.mint(sub, issuer=None),
    "no-exp": lambda key, sub: key.mint(sub, exp=None),
    "no-jti": lambda key, sub: key.mint(sub, jti=None),
    "no-sub": lambda key, sub: key.mint(None),
    "sub-not-a-uuid": lambda key, sub: key.mint("admin"),
    "tampered-payload": lambda key, sub: _tamper_payload(key.mint(str(uuid.uuid4())), sub),
    "tampered-signature": lambda key, sub: _tamper_signature(key.mint(sub)),
    "unknown-kid": lambda key, sub: key.mint(sub, headers={"kid": "no-such-key"}),
    "no-kid": lambda key, sub: key.mint(sub, headers={"kid": None}),
    "foreign-key-our-kid": lambda key, sub: SigningKey.generate(kid=key.kid).mint(sub),
    "foreign-es256-our-kid": lambda key, sub: SigningKey.generate(
        kid=key.kid, algorithm="ES256"
    ).mint(sub),
    "two-parts": lambda key, sub: key.mint(sub).rsplit(".", 1)[0],
}


# --- me -------------------------------------------------------------------------------------


async def test_me_without_projects_returns_the_user(accounts):
    account, tokens = await accounts.sign_up()

    me = await accounts.me(tokens["access_token"])

    assert set(me) == {"id", "username", "email", "created_at", "projects"}
    assert (me["id"], me["username"], me["email"]) == (account.id, account.username, account.email)
    assert me["projects"] == []


async def test_me_lists_projects_with_the_callers_role(accounts):
    _, owner_tokens = await accounts.sign_up()
    viewer, viewer_tokens = await accounts.sign_up()
    owner_headers = auth_headers(owner_tokens["access_token"])
    viewer_headers = auth_headers(viewer_tokens["access_token"])
    shared = await accounts.client.post(
        "/api/v1/projects", json={"name": "Shared"}, headers=owner_headers
    )
    shared_id = (await shared.json())["id"]
    added = await accounts.client.post(
        f"/api/v1/projects/{shared_id}/members",
        json={"username": viewer.username, "role": "viewer"},
        headers=owner_headers,
    )
    assert added.status == 201, await added.text()
    own = await accounts.client.post(
        "/api/v1/projects", json={"name": "Own"}, headers=viewer_headers
    )
    own_id = (await own.json())["id"]

    me = await accounts.me(viewer_tokens["access_token"])

    assert sorted(me["projects"], key=lambda p: p["name"]) == [
        {"id": own_id, "name": "Own", "role": "owner"},
        {"id": shared_id, "name": "Shared", "role": "viewer"},
    ]


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"]
)
async def test_me_without_bearer_token_is_401_with_challenge(accounts, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await accounts.client.get(ME, headers=headers)

    await assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_me_with_garbage_token_is_401_invalid_token(accounts):
    response = await accounts.client.get(ME, headers=auth_headers("not.a.jwt"))

    await assert_problem(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


# --- forged and broken tokens ---------------------------------------------------------------


async def test_me_with_token_minted_by_our_key_is_accepted(accounts, our_key):
    """The control for the forgeries below: the same minting with nothing wrong passes."""
    account = await accounts.register()

    me = await accounts.me(our_key.mint(account.id, sid=str(uuid.uuid4())))

    assert me["id"] == account.id


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_me_with_forged_token_is_401(accounts, our_key, forge):
    account = await accounts.register()

    response = await accounts.client.get(ME, headers=auth_headers(forge(our_key, account.id)))

    await assert_problem(response, 401, "unauthorized")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge


async def test_me_with_expired_token_within_leeway_is_accepted(accounts, our_key):
    account = await accounts.register()

    me = await accounts.me(our_key.mint(account.id, ttl=-5))

    assert me["id"] == account.id
