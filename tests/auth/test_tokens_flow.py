"""Refresh-token rotation and reuse detection, logout, the JWKS and key rotation."""

import asyncio
import shutil
import uuid

import asyncpg
import jwt
import pytest

from auth_service.signing import generate_key
from tests.auth.accounts_api import (
    JWKS,
    LOGOUT,
    ME,
    REFRESH,
    AccountsApi,
    auth_headers,
    service_key,
    sha256,
)
from tests.problems import assert_problem
from tests.tokens import SigningKey


async def _stored(auth_db, refresh_token: str) -> asyncpg.Record:
    row = await auth_db.fetchrow(
        "SELECT family_id, created_at, expires_at, spent_at, revoked_at"
        " FROM refresh_tokens WHERE token_hash = $1",
        sha256(refresh_token),
    )
    assert row is not None
    return row


# --- refresh --------------------------------------------------------------------------------


async def test_refresh_rotates_the_pair_within_the_session(accounts, auth_db):
    account, first = await accounts.sign_up()

    response = await accounts.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})

    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    second = await response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (second["token_type"], second["expires_in"]) == ("Bearer", 900)
    old_claims = await accounts.decode(first["access_token"])
    new_claims = await accounts.decode(second["access_token"])
    assert new_claims["sub"] == account.id
    assert new_claims["sid"] == old_claims["sid"]
    assert new_claims["jti"] != old_claims["jti"]
    spent = await _stored(auth_db, first["refresh_token"])
    fresh = await _stored(auth_db, second["refresh_token"])
    assert spent["spent_at"] is not None
    assert fresh["spent_at"] is None
    assert spent["family_id"] == fresh["family_id"]
    assert (await accounts.refresh(second["refresh_token"]))["refresh_token"]


async def test_refresh_with_spent_token_revokes_the_whole_family(accounts, auth_db):
    _, first = await accounts.sign_up()
    second = await accounts.refresh(first["refresh_token"])
    newest = await accounts.refresh(second["refresh_token"])

    reused = await accounts.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})

    await assert_problem(reused, 401, "refresh_token_reused")
    newest_refused = await accounts.client.post(
        REFRESH, json={"refresh_token": newest["refresh_token"]}
    )
    await assert_problem(newest_refused, 401, "invalid_refresh_token")
    family = (await _stored(auth_db, newest["refresh_token"]))["family_id"]
    revoked = await auth_db.fetch(
        "SELECT revoked_at FROM refresh_tokens WHERE family_id = $1", family
    )
    assert len(revoked) == 3
    assert all(row["revoked_at"] is not None for row in revoked)


async def test_refresh_reuse_leaves_other_sessions_alone(accounts):
    account, stolen = await accounts.sign_up()
    other = await accounts.login(account.username, account.password)
    await accounts.refresh(stolen["refresh_token"])

    reused = await accounts.client.post(REFRESH, json={"refresh_token": stolen["refresh_token"]})

    await assert_problem(reused, 401, "refresh_token_reused")
    await accounts.refresh(other["refresh_token"])


async def test_refresh_same_token_twice_at_once_lets_one_through(accounts):
    _, tokens = await accounts.sign_up()

    responses = await asyncio.gather(
        *(
            accounts.client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
            for _ in "ab"
        )
    )

    statuses = sorted(response.status for response in responses)
    assert statuses == [200, 401]
    winner, loser = sorted(responses, key=lambda response: response.status)
    await assert_problem(loser, 401, "refresh_token_reused")
    # The reuse ended the session, so even the winner's new token is dead.
    new_token = (await winner.json())["refresh_token"]
    refused = await accounts.client.post(REFRESH, json={"refresh_token": new_token})
    await assert_problem(refused, 401, "invalid_refresh_token")


@pytest.mark.parametrize(
    "token",
    ["garbage", "etpr_" + "A" * 43, "x" * 256, "Bearer etpr_abc"],
    ids=["garbage", "unknown-prefixed", "max-length", "with-scheme"],
)
async def test_refresh_unknown_token_is_401(accounts, token):
    response = await accounts.client.post(REFRESH, json={"refresh_token": token})

    await assert_problem(response, 401, "invalid_refresh_token")


@pytest.mark.parametrize("body", [{}, {"refresh_token": ""}, {"refresh_token": "x" * 257}])
async def test_refresh_bad_body_is_422(accounts, body):
    response = await accounts.client.post(REFRESH, json=body)

    await assert_problem(response, 422, "validation_failed")


async def test_refresh_expired_token_is_401(accounts, auth_db):
    _, tokens = await accounts.sign_up()
    await auth_db.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        sha256(tokens["refresh_token"]),
    )

    response = await accounts.client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})

    await assert_problem(response, 401, "invalid_refresh_token")


async def test_refresh_token_lifetime_follows_the_setting(service_app_client, auth_db):
    accounts = AccountsApi(await service_app_client("auth", refresh_token_ttl=60))
    _, tokens = await accounts.sign_up()
    second = await accounts.refresh(tokens["refresh_token"])

    for token in (tokens["refresh_token"], second["refresh_token"]):
        stored = await _stored(auth_db, token)
        lifetime = (stored["expires_at"] - stored["created_at"]).total_seconds()
        assert 59 <= lifetime <= 61


# --- logout ---------------------------------------------------------------------------------


async def test_logout_revokes_the_family(accounts, auth_db):
    _, first = await accounts.sign_up()
    second = await accounts.refresh(first["refresh_token"])

    await accounts.logout(second["refresh_token"])

    refused = await accounts.client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    await assert_problem(refused, 401, "invalid_refresh_token")
    family = (await _stored(auth_db, first["refresh_token"]))["family_id"]
    assert await auth_db.fetchval(
        "SELECT bool_and(revoked_at IS NOT NULL) FROM refresh_tokens WHERE family_id = $1", family
    )


async def test_logout_leaves_other_sessions_alone(accounts):
    account, leaving = await accounts.sign_up()
    staying = await accounts.login(account.username, account.password)

    await accounts.logout(leaving["refresh_token"])

    await accounts.refresh(staying["refresh_token"])


@pytest.mark.parametrize("token", ["etpr_unknown", "garbage"])
async def test_logout_unknown_token_is_204(accounts, token):
    response = await accounts.client.post(LOGOUT, json={"refresh_token": token})

    assert response.status == 204, await response.text()


async def test_logout_twice_is_204(accounts):
    _, tokens = await accounts.sign_up()
    await accounts.logout(tokens["refresh_token"])

    await accounts.logout(tokens["refresh_token"])


async def test_logout_bad_body_is_422(accounts):
    response = await accounts.client.post(LOGOUT, json={"token": "etpr_x"})

    await assert_problem(response, 422, "validation_failed")


# --- JWKS and key rotation ------------------------------------------------------------------


async def test_jwks_publishes_only_public_keys(accounts, make_settings):
    response = await accounts.client.get(JWKS)

    assert response.status == 200
    assert "public" in response.headers["Cache-Control"]
    keys = (await response.json())["keys"]
    key_files = make_settings("auth").jwt_keys_dir.glob("*.pem")
    assert {key["kid"] for key in keys} == {path.stem for path in key_files}
    for key in keys:
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )
        assert key["x"]
        assert "d" not in key


async def test_key_rotation_new_key_signs_and_old_key_still_verifies(
    service_app_client, make_settings, tmp_path
):
    old_dir = make_settings("auth").jwt_keys_dir
    old_kid = service_key(old_dir).kid
    keys_dir = tmp_path / "keys"
    shutil.copytree(old_dir, keys_dir)
    new_kid = generate_key(keys_dir).stem
    before = AccountsApi(await service_app_client("auth"))
    account, old_tokens = await before.sign_up()

    after = AccountsApi(
        await service_app_client("auth", jwt_keys_dir=keys_dir, jwt_active_kid=new_kid)
    )
    new_tokens = await after.login(account.username, account.password)

    assert jwt.get_unverified_header(old_tokens["access_token"])["kid"] == old_kid
    assert jwt.get_unverified_header(new_tokens["access_token"])["kid"] == new_kid
    published = {key["kid"] for key in (await after.jwks())["keys"]}
    assert {old_kid, new_kid} <= published
    assert (await after.me(old_tokens["access_token"]))["id"] == account.id
    assert (await after.me(new_tokens["access_token"]))["id"] == account.id
    # A refresh token outlives the key that signed its first access token.
    refreshed = await after.refresh(old_tokens["refresh_token"])
    assert jwt.get_unverified_header(refreshed["access_token"])["kid"] == new_kid


async def test_key_rotation_removed_key_no_longer_verifies(
    service_app_client, make_settings, tmp_path
):
    before = AccountsApi(await service_app_client("auth"))
    _, old_tokens = await before.sign_up()
    keys_dir = tmp_path / "keys"
    new_kid = generate_key(keys_dir).stem

    after = AccountsApi(await service_app_client("auth", jwt_keys_dir=keys_dir))

    assert [key["kid"] for key in (await after.jwks())["keys"]] == [new_kid]
    response = await after.client.get(ME, headers=auth_headers(old_tokens["access_token"]))
    await assert_problem(response, 401, "unauthorized")


async def test_es256_key_signs_es256_tokens(service_app_client, tmp_path):
    key = SigningKey.generate(kid="p256", algorithm="ES256")
    (tmp_path / "p256.pem").write_bytes(key.private_pem())
    accounts = AccountsApi(await service_app_client("auth", jwt_keys_dir=tmp_path))

    account, tokens = await accounts.sign_up()

    assert jwt.get_unverified_header(tokens["access_token"]) == {
        "alg": "ES256",
        "kid": "p256",
        "typ": "JWT",
    }
    [published] = (await accounts.jwks())["keys"]
    assert (published["kty"], published["crv"], published["alg"]) == ("EC", "P-256", "ES256")
    assert "d" not in published
    assert (await accounts.me(tokens["access_token"]))["id"] == account.id
    assert uuid.UUID((await accounts.decode(tokens["access_token"]))["sub"]) == uuid.UUID(
        account.id
    )
