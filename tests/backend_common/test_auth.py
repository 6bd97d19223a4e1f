"""Access-token verification: what verifies, what is refused, and how the key set is kept."""

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import orjson
import pytest

from backend_common.auth import (
    AccessClaims,
    InvalidToken,
    TokenVerifier,
    jwks_from_file,
    jwks_from_url,
)
from backend_common.errors import ProblemError
from tests.backend_common.verifier_kit import (
    AUDIENCE,
    ISSUER,
    JWKS_PATH,
    LEEWAY,
    USER_ID,
    FakeJwks,
)
from tests.tokens import SigningKey, jwks


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(payload))}"


def valid_payload(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": str(USER_ID), "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 900}
    return claims | {"jti": "jti-1"} | overrides


# TokenVerifier's defaults: an unknown kid refetches the JWKS at most once per 10 s, and the key
# set is refetched once it is 5 minutes old.
REFETCH_INTERVAL = 10.0
REFRESH_INTERVAL = 300.0


def replace_char(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


# --- valid tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("key_name", ["ed_key", "es_key"])
async def test_verify_valid_token_returns_access_claims(request, verifier, key_name):
    key = request.getfixturevalue(key_name)
    token = key.mint(USER_ID, jti="jti-42", sid="session-7")

    claims = await verifier.verify(token)

    expected_exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert claims == AccessClaims(
        user_id=USER_ID,
        token_id="jti-42",
        session_id="session-7",
        expires_at=expected_exp,
        token=token,
    )
    assert isinstance(claims.user_id, uuid.UUID)


async def test_verify_token_without_sid_has_no_session_id(verifier, ed_key):
    claims = await verifier.verify(ed_key.mint(USER_ID))

    assert claims.session_id is None


async def test_verify_expired_within_leeway_is_accepted(verifier, clock, ed_key):
    now = clock.epoch
    token = ed_key.mint(USER_ID, iat=now - 910, exp=now - (LEEWAY - 20))

    claims = await verifier.verify(token)

    assert claims.user_id == USER_ID


async def test_verify_token_not_yet_valid_verifies_once_clock_reaches_nbf(verifier, clock, ed_key):
    token = ed_key.mint(USER_ID, nbf=clock.epoch + LEEWAY + 60)
    with pytest.raises(InvalidToken, match=r"not yet valid \(nbf\)"):
        await verifier.verify(token)
    clock.advance(60)

    claims = await verifier.verify(token)

    assert claims.user_id == USER_ID


async def test_verify_remembered_token_is_refused_once_clock_passes_exp(verifier, clock, ed_key):
    token = ed_key.mint(USER_ID, ttl=900)
    await verifier.verify(token)
    clock.advance(900 + LEEWAY - 5)
    await verifier.verify(token)
    clock.advance(10)

    with pytest.raises(InvalidToken, match="Signature has expired"):
        await verifier.verify(token)


# --- refused tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_verify_alg_none_is_refused(verifier, ed_key, alg):
    token = segments({"alg": alg, "typ": "JWT", "kid": ed_key.kid}, valid_payload()) + "."

    with pytest.raises(InvalidToken, match="is not accepted"):
        await verifier.verify(token)


@pytest.mark.parametrize(
    "secret_of",
    [
        pytest.param(lambda key: key.public_pem(), id="public-pem"),
        pytest.param(lambda key: key.private_key.public_key().public_bytes_raw(), id="public-raw"),
        pytest.param(lambda key: orjson.dumps(key.jwk()), id="public-jwk"),
    ],
)
async def test_verify_hs256_keyed_with_public_key_is_refused(verifier, ed_key, secret_of):
    # PyJWT refuses to HMAC with a PEM key, so the confused token is signed by hand.
    signing_input = segments({"alg": "HS256", "typ": "JWT", "kid": ed_key.kid}, valid_payload())
    digest = hmac.new(secret_of(ed_key), signing_input.encode(), hashlib.sha256).digest()

    with pytest.raises(InvalidToken, match="'HS256' is not accepted"):
        await verifier.verify(f"{signing_input}.{b64url(digest)}")


async def test_verify_hs256_with_any_secret_is_refused(verifier, ed_key):
    token = jwt.encode(
        valid_payload(), "a-shared-secret-of-32-bytes-long!", "HS256", headers={"kid": ed_key.kid}
    )

    with pytest.raises(InvalidToken, match="'HS256' is not accepted"):
        await verifier.verify(token)


@pytest.mark.parametrize(
    ("claims_at", "reason"),
    [
        pytest.param(lambda now: {"issuer": "someone-else"}, "Invalid issuer", id="wrong-iss"),
        pytest.param(
            lambda now: {"audience": "other-app"}, "Audience doesn't match", id="wrong-aud"
        ),
        pytest.param(
            lambda now: {"iat": now - 1000, "exp": now - LEEWAY - 30},
            "Signature has expired",
            id="expired",
        ),
        pytest.param(lambda now: {"nbf": now + 3600}, r"not yet valid \(nbf\)", id="nbf-future"),
        pytest.param(
            lambda now: {"iat": now + 3600, "exp": now + 7200},
            "not yet valid|future",
            id="iat-future",
        ),
    ],
)
async def test_verify_bad_claim_is_refused(verifier, clock, ed_key, claims_at, reason):
    token = ed_key.mint(USER_ID, **claims_at(clock.epoch))

    with pytest.raises(InvalidToken, match=reason):
        await verifier.verify(token)


@pytest.mark.parametrize("claim", ["sub", "iss", "aud", "iat", "exp", "jti"])
async def test_verify_missing_required_claim_is_refused(verifier, ed_key, claim):
    token = ed_key.mint(USER_ID, **{claim: None})

    with pytest.raises(InvalidToken, match=f'missing the "{claim}" claim'):
        await verifier.verify(token)


@pytest.mark.parametrize("claim", ["iat", "nbf", "exp"])
async def test_verify_time_claim_not_an_integer_is_refused(verifier, ed_key, claim):
    with pytest.raises(InvalidToken, match="must be integers"):
        await verifier.verify(ed_key.mint(USER_ID, **{claim: "soon"}))


@pytest.mark.parametrize("sub", ["alice", "", "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4g"])
async def test_verify_sub_not_uuid_is_refused(verifier, ed_key, sub):
    with pytest.raises(InvalidToken, match="subject is not a user id"):
        await verifier.verify(ed_key.mint(sub))


async def test_verify_tampered_payload_is_refused(verifier, ed_key):
    header, payload, signature = ed_key.mint(USER_ID).split(".")

    with pytest.raises(InvalidToken, match="Signature verification failed"):
        await verifier.verify(f"{header}.{replace_char(payload, len(payload) // 2)}.{signature}")


async def test_verify_payload_with_swapped_sub_is_refused(verifier, ed_key):
    header, _, signature = ed_key.mint(USER_ID).split(".")
    forged = b64url(orjson.dumps(valid_payload(sub=str(uuid.uuid4()))))

    with pytest.raises(InvalidToken, match="Signature verification failed"):
        await verifier.verify(f"{header}.{forged}.{signature}")


async def test_verify_tampered_signature_is_refused(verifier, ed_key):
    header, payload, signature = ed_key.mint(USER_ID).split(".")

    with pytest.raises(InvalidToken, match="Signature verification failed"):
        await verifier.verify(f"{header}.{payload}.{replace_char(signature, len(signature) // 2)}")


@pytest.mark.parametrize("kid", [None, ""], ids=["absent", "empty"])
async def test_verify_missing_kid_is_refused(verifier, ed_key, kid):
    with pytest.raises(InvalidToken, match="no key id"):
        await verifier.verify(ed_key.mint(USER_ID, headers={"kid": kid}))


async def test_verify_kid_not_a_string_is_refused(verifier, fetcher):
    # PyJWT will not sign such a header, so it is built by hand with a dummy signature.
    token = f"{segments({'alg': 'EdDSA', 'kid': 123}, valid_payload())}.{b64url(bytes(64))}"

    with pytest.raises(InvalidToken, match=r"(?i)key id"):
        await verifier.verify(token)

    assert fetcher.calls == 0


async def test_verify_unknown_kid_is_refused(verifier):
    stranger = SigningKey.generate("stranger-1")

    with pytest.raises(InvalidToken, match="unknown key id 'stranger-1'"):
        await verifier.verify(stranger.mint(USER_ID))


async def test_verify_other_key_claiming_known_kid_is_refused(verifier, ed_key):
    impostor = SigningKey.generate(ed_key.kid, "EdDSA")

    with pytest.raises(InvalidToken, match="Signature verification failed"):
        await verifier.verify(impostor.mint(USER_ID))


@pytest.mark.parametrize(
    ("signer", "claimed"),
    [("es_key", "ed_key"), ("ed_key", "es_key")],
    ids=["es-on-ed", "ed-on-es"],
)
async def test_verify_alg_mismatching_key_type_is_refused(request, verifier, signer, claimed):
    signing_key = request.getfixturevalue(signer)
    claimed_key = request.getfixturevalue(claimed)
    token = signing_key.mint(USER_ID, headers={"kid": claimed_key.kid})

    with pytest.raises(InvalidToken, match="does not match its key"):
        await verifier.verify(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        "..",
        "a.b.c.d.e",
        "ä.ö.ü",
        "eyJhbGciOiJFZERTQSJ9",
        f"{b64url(b'[]')}.{b64url(b'{}')}.",
        f"{b64url(b'not json')}.{b64url(b'{}')}.",
        "Bearer eyJhbGciOiJFZERTQSJ9.e30.",
    ],
)
async def test_verify_garbage_is_refused(verifier, fetcher, token):
    with pytest.raises(InvalidToken):
        await verifier.verify(token)

    assert fetcher.calls == 0


# --- JWKS cache and refetch ---------------------------------------------------------------------


async def test_verify_many_tokens_fetches_jwks_once(verifier, fetcher, ed_key, es_key):
    for key in (ed_key, es_key, ed_key):
        await verifier.verify(key.mint(USER_ID))

    assert fetcher.calls == 1


async def test_verify_concurrent_on_cold_cache_fetches_jwks_once(verifier, fetcher, ed_key):
    results = await asyncio.gather(*(verifier.verify(ed_key.mint(USER_ID)) for _ in range(10)))

    assert {claims.user_id for claims in results} == {USER_ID}
    assert fetcher.calls == 1


async def test_verify_rotated_key_refetches_once_and_verifies(make_verifier, clock, ed_key):
    fetcher = FakeJwks(ed_key)
    verifier = make_verifier(fetcher)
    await verifier.verify(ed_key.mint(USER_ID))
    rotated = SigningKey.generate("ed-2")
    fetcher.keys.append(rotated)
    clock.advance(REFETCH_INTERVAL)

    claims = await verifier.verify(rotated.mint(USER_ID))
    await verifier.verify(rotated.mint(USER_ID))
    await verifier.verify(ed_key.mint(USER_ID))

    assert claims.user_id == USER_ID
    assert fetcher.calls == 2


async def test_verify_unknown_kids_within_interval_fetch_no_more(make_verifier, fetcher, ed_key):
    verifier = make_verifier(min_refetch_interval=60)

    for number in range(5):
        with pytest.raises(InvalidToken, match="unknown key id"):
            await verifier.verify(SigningKey.generate(f"forged-{number}").mint(USER_ID))
    await verifier.verify(ed_key.mint(USER_ID))

    assert fetcher.calls == 1


async def test_verify_unknown_kid_refetches_only_when_interval_has_passed(
    make_verifier, clock, ed_key
):
    fetcher = FakeJwks(ed_key)
    verifier = make_verifier(fetcher)
    await verifier.verify(ed_key.mint(USER_ID))
    rotated = SigningKey.generate("ed-2")
    fetcher.keys.append(rotated)
    clock.advance(REFETCH_INTERVAL - 1)
    with pytest.raises(InvalidToken, match="unknown key id"):
        await verifier.verify(rotated.mint(USER_ID))
    clock.advance(1)

    claims = await verifier.verify(rotated.mint(USER_ID))

    assert claims.user_id == USER_ID
    assert fetcher.calls == 2


async def test_verify_key_published_late_verifies_after_interval(make_verifier, clock, ed_key):
    fetcher = FakeJwks(ed_key)
    verifier = make_verifier(fetcher)
    await verifier.verify(ed_key.mint(USER_ID))
    rotated = SigningKey.generate("ed-2")
    clock.advance(REFETCH_INTERVAL)
    with pytest.raises(InvalidToken, match="unknown key id"):
        await verifier.verify(rotated.mint(USER_ID))
    fetcher.keys.append(rotated)
    clock.advance(REFETCH_INTERVAL)

    claims = await verifier.verify(rotated.mint(USER_ID))

    assert claims.user_id == USER_ID
    assert fetcher.calls == 3


async def test_verify_key_removed_from_jwks_is_refused_once_key_set_is_refreshed(
    make_verifier, clock, ed_key, es_key
):
    fetcher = FakeJwks(ed_key, es_key)
    verifier = make_verifier(fetcher)
    remembered = ed_key.mint(USER_ID)
    await verifier.verify(remembered)
    fetcher.keys.remove(ed_key)
    clock.advance(REFRESH_INTERVAL - 1)
    await verifier.verify(remembered)
    assert fetcher.calls == 1
    clock.advance(1)

    for token in (remembered, ed_key.mint(USER_ID)):
        with pytest.raises(InvalidToken, match="unknown key id"):
            await verifier.verify(token)
    claims = await verifier.verify(es_key.mint(USER_ID))

    assert claims.user_id == USER_ID
    assert fetcher.calls == 2


async def test_verify_key_set_refresh_interval_is_a_setting(make_verifier, clock, ed_key, es_key):
    fetcher = FakeJwks(ed_key, es_key)
    verifier = make_verifier(fetcher, refresh_interval=60)
    await verifier.verify(ed_key.mint(USER_ID))
    fetcher.keys.remove(ed_key)
    clock.advance(60)

    with pytest.raises(InvalidToken, match="unknown key id"):
        await verifier.verify(ed_key.mint(USER_ID))
    assert fetcher.calls == 2


async def test_verify_failed_scheduled_refresh_keeps_keys_and_retries_after_min_interval(
    make_verifier, clock, ed_key, es_key
):
    fetcher = FakeJwks(ed_key, es_key)
    verifier = make_verifier(fetcher)
    await verifier.verify(ed_key.mint(USER_ID))
    fetcher.error = aiohttp.ClientConnectionError("refused")
    clock.advance(REFRESH_INTERVAL)

    for _ in range(3):
        await verifier.verify(ed_key.mint(USER_ID))
    assert fetcher.calls == 2
    fetcher.error = None
    fetcher.keys.remove(ed_key)
    clock.advance(REFETCH_INTERVAL)

    with pytest.raises(InvalidToken, match="unknown key id"):
        await verifier.verify(ed_key.mint(USER_ID))
    assert fetcher.calls == 3


def _fetcher_raising(error: Exception):
    async def fetch() -> dict[str, Any]:
        raise error

    return lambda tmp_path: fetch


def _fetcher_returning(document: Any):
    async def fetch() -> Any:
        return document

    return lambda tmp_path: fetch


def _file_fetcher(content: bytes | None):
    def make(tmp_path: Path):
        path = tmp_path / "jwks.json"
        if content is not None:
            path.write_bytes(content)
        return jwks_from_file(path)

    return make


@pytest.mark.parametrize(
    "make_fetcher",
    [
        pytest.param(_fetcher_raising(aiohttp.ClientConnectionError("refused")), id="conn-error"),
        pytest.param(_fetcher_raising(TimeoutError()), id="timeout"),
        pytest.param(_fetcher_returning({"keys": []}), id="no-keys"),
        pytest.param(_fetcher_returning({"keys": [{"kty": "nope"}]}), id="unusable-keys"),
        pytest.param(_fetcher_returning({}), id="empty-object"),
        pytest.param(_fetcher_returning([]), id="json-array"),
        pytest.param(_file_fetcher(None), id="missing-file"),
        pytest.param(_file_fetcher(b"<html>"), id="not-json-file"),
    ],
)
async def test_verify_failing_fetcher_is_503(make_verifier, ed_key, tmp_path, make_fetcher):
    verifier = make_verifier(make_fetcher(tmp_path))

    with pytest.raises(ProblemError) as caught:
        await verifier.verify(ed_key.mint(USER_ID))

    assert (caught.value.status, caught.value.code) == (503, "auth_keys_unavailable")


async def test_verify_after_failed_fetch_within_interval_is_still_503(make_verifier, clock, ed_key):
    # Within the interval the keys cannot be checked: a valid token must not be called invalid.
    fetcher = FakeJwks(ed_key)
    fetcher.error = aiohttp.ClientConnectionError("refused")
    verifier = make_verifier(fetcher)
    for _ in range(2):
        with pytest.raises(ProblemError, match="Could not load the token keys"):
            await verifier.verify(ed_key.mint(USER_ID))
    fetcher.error = None
    clock.advance(REFETCH_INTERVAL)

    claims = await verifier.verify(ed_key.mint(USER_ID))

    assert claims.user_id == USER_ID
    assert fetcher.calls == 2


# --- fetchers -----------------------------------------------------------------------------------


async def test_jwks_from_url_serves_keys_to_verifier(mockserver, mockserver_info, ed_key):
    @mockserver.json_handler(JWKS_PATH)
    def handler(request):
        return jwks(ed_key)

    async with aiohttp.ClientSession() as session:
        fetch = jwks_from_url(session, mockserver_info.url(JWKS_PATH.lstrip("/")))
        verifier = TokenVerifier(fetch_jwks=fetch, issuer=ISSUER, audience=AUDIENCE)
        for _ in range(3):
            claims = await verifier.verify(ed_key.mint(USER_ID))

    assert claims.user_id == USER_ID
    assert handler.times_called == 1


async def test_jwks_from_url_server_error_is_503(mockserver, mockserver_info, ed_key):
    @mockserver.json_handler(JWKS_PATH)
    def handler(request):
        return mockserver.make_response("down", status=500)

    async with aiohttp.ClientSession() as session:
        fetch = jwks_from_url(session, mockserver_info.url(JWKS_PATH.lstrip("/")))
        verifier = TokenVerifier(fetch_jwks=fetch, issuer=ISSUER, audience=AUDIENCE)
        with pytest.raises(ProblemError, match="500") as caught:
            await verifier.verify(ed_key.mint(USER_ID))

    assert caught.value.status == 503
    assert handler.times_called == 1


async def test_jwks_from_file_rewritten_file_serves_rotated_key(tmp_path, ed_key):
    path = tmp_path / "jwks.json"
    path.write_bytes(orjson.dumps(jwks(ed_key)))
    verifier = TokenVerifier(
        fetch_jwks=jwks_from_file(path), issuer=ISSUER, audience=AUDIENCE, min_refetch_interval=0
    )
    await verifier.verify(ed_key.mint(USER_ID))
    rotated = SigningKey.generate("ed-2", "ES256")
    path.write_bytes(orjson.dumps(jwks(ed_key, rotated)))

    claims = await verifier.verify(rotated.mint(USER_ID))

    assert claims.user_id == USER_ID
