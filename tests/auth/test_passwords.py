"""Changing a password, and resetting a forgotten one with a single-use emailed token."""

import asyncio
from datetime import UTC, datetime

import pytest

from auth_service.app import create_app
from tests.auth.accounts_api import (
    LOGIN,
    PASSWORD,
    REFRESH,
    RESET_CONFIRM,
    AccountsApi,
    RecordingSender,
    auth_headers,
    sha256,
)
from tests.problems import assert_problem

NEW_PASSWORD = "new and improved"


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
async def reset_api(aiohttp_client, pgsql, make_settings, sender):
    """An auth app whose reset tokens land in `sender` instead of the log."""

    async def create(**overrides) -> AccountsApi:
        app = create_app(make_settings("auth", **overrides), reset_sender=sender)
        return AccountsApi(await aiohttp_client(app))

    return create


async def _assert_login_fails(accounts: AccountsApi, login: str, password: str) -> None:
    response = await accounts.client.post(LOGIN, json={"username": login, "password": password})
    await assert_problem(response, 401, "invalid_credentials")


async def _assert_refresh_fails(accounts: AccountsApi, refresh_token: str) -> None:
    response = await accounts.client.post(REFRESH, json={"refresh_token": refresh_token})
    await assert_problem(response, 401, "invalid_refresh_token")


async def _confirm(accounts: AccountsApi, token: str, new_password: str = NEW_PASSWORD):
    return await accounts.client.post(
        RESET_CONFIRM, json={"token": token, "new_password": new_password}
    )


# --- change ---------------------------------------------------------------------------------


async def test_change_password_replaces_the_old_one(accounts):
    account, tokens = await accounts.sign_up()

    await accounts.change_password(tokens["access_token"], account.password, NEW_PASSWORD)

    await accounts.login(account.username, NEW_PASSWORD)
    await _assert_login_fails(accounts, account.username, account.password)


async def test_change_password_ends_other_sessions_but_keeps_the_callers(accounts, auth_db):
    account, current = await accounts.sign_up()
    other = await accounts.login(account.username, account.password)
    rotated_other = await accounts.refresh(other["refresh_token"])

    await accounts.change_password(current["access_token"], account.password, NEW_PASSWORD)

    await _assert_refresh_fails(accounts, rotated_other["refresh_token"])
    still_current = await accounts.refresh(current["refresh_token"])
    assert still_current["access_token"]
    live = await auth_db.fetchval(
        "SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL AND spent_at IS NULL"
    )
    assert live == 1


@pytest.mark.parametrize("old_password", ["not the password", "p" * 100])
async def test_change_password_wrong_old_password_is_403(accounts, old_password):
    account, tokens = await accounts.sign_up()
    other = await accounts.login(account.username, account.password)

    response = await accounts.client.post(
        PASSWORD,
        json={"old_password": old_password, "new_password": NEW_PASSWORD},
        headers=auth_headers(tokens["access_token"]),
    )

    await assert_problem(response, 403, "wrong_password")
    await accounts.login(account.username, account.password)
    await accounts.refresh(other["refresh_token"])


@pytest.mark.parametrize("new_password", ["short", "a" * 73, "€" * 25])
async def test_change_password_unacceptable_new_password_is_422(accounts, new_password):
    account, tokens = await accounts.sign_up()

    response = await accounts.client.post(
        PASSWORD,
        json={"old_password": account.password, "new_password": new_password},
        headers=auth_headers(tokens["access_token"]),
    )

    body = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in body["errors"]] == ["new_password"]
    await accounts.login(account.username, account.password)


async def test_change_password_without_token_is_401(accounts):
    account = await accounts.register()

    response = await accounts.client.post(
        PASSWORD, json={"old_password": account.password, "new_password": NEW_PASSWORD}
    )

    await assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- reset ----------------------------------------------------------------------------------


async def test_reset_request_for_registered_email_sends_a_token(reset_api, sender, auth_db):
    accounts = await reset_api(password_reset_ttl=600)
    account = await accounts.register(email="ada@example.org")

    response = await accounts.request_reset("ADA@example.org")

    assert response.status == 202, await response.text()
    [(user, token, expires_at)] = sender.sent
    assert str(user.id) == account.id
    assert token.startswith("etpp_")
    assert 590 <= (expires_at - datetime.now(UTC)).total_seconds() <= 600
    [row] = await auth_db.fetch("SELECT token_hash, expires_at, used_at FROM password_resets")
    assert row["token_hash"] == sha256(token)
    assert row["expires_at"] == expires_at
    assert row["used_at"] is None


async def test_reset_request_for_unknown_email_says_nothing(reset_api, sender, auth_db):
    accounts = await reset_api()
    await accounts.register(email="ada@example.org")

    response = await accounts.request_reset("nobody@example.org")

    assert response.status == 202, await response.text()
    assert sender.sent == []
    assert await auth_db.fetchval("SELECT count(*) FROM password_resets") == 0


async def test_reset_request_bad_email_is_422(reset_api):
    accounts = await reset_api()

    response = await accounts.request_reset("not-an-email")

    await assert_problem(response, 422, "validation_failed")


async def test_reset_confirm_sets_the_password_and_ends_every_session(reset_api, sender):
    accounts = await reset_api()
    account, first = await accounts.sign_up()
    second = await accounts.login(account.email, account.password)
    await accounts.request_reset(account.email)

    response = await _confirm(accounts, sender.last_token)

    assert response.status == 204, await response.text()
    await accounts.login(account.username, NEW_PASSWORD)
    await _assert_login_fails(accounts, account.username, account.password)
    await _assert_refresh_fails(accounts, first["refresh_token"])
    await _assert_refresh_fails(accounts, second["refresh_token"])


async def test_reset_token_works_only_once(reset_api, sender):
    accounts = await reset_api()
    account = await accounts.register()
    await accounts.request_reset(account.email)
    assert (await _confirm(accounts, sender.last_token)).status == 204

    again = await _confirm(accounts, sender.last_token, "a third password")

    await assert_problem(again, 400, "invalid_reset_token")
    await accounts.login(account.username, NEW_PASSWORD)


async def test_reset_other_tokens_of_the_user_stop_working_after_a_reset(reset_api, sender):
    accounts = await reset_api()
    account = await accounts.register()
    await accounts.request_reset(account.email)
    await accounts.request_reset(account.email)
    older, newer = sender.sent[0][1], sender.sent[1][1]
    assert (await _confirm(accounts, newer)).status == 204

    stale = await _confirm(accounts, older, "a third password")

    await assert_problem(stale, 400, "invalid_reset_token")


async def test_password_change_makes_pending_reset_tokens_useless(reset_api, sender):
    accounts = await reset_api()
    account, tokens = await accounts.sign_up()
    await accounts.request_reset(account.email)
    changed = await accounts.client.post(
        "/api/v1/auth/password",
        json={"old_password": account.password, "new_password": NEW_PASSWORD},
        headers=auth_headers(tokens["access_token"]),
    )
    assert changed.status == 204, await changed.text()

    stale = await _confirm(accounts, sender.last_token, "a third password")

    await assert_problem(stale, 400, "invalid_reset_token")


async def test_reset_same_token_twice_at_once_lets_one_through(reset_api, sender):
    accounts = await reset_api()
    account = await accounts.register()
    await accounts.request_reset(account.email)

    responses = await asyncio.gather(
        _confirm(accounts, sender.last_token, "first password"),
        _confirm(accounts, sender.last_token, "second password"),
    )

    assert sorted(response.status for response in responses) == [204, 400]


async def test_reset_expired_token_is_400(reset_api, sender, auth_db):
    accounts = await reset_api()
    account = await accounts.register()
    await accounts.request_reset(account.email)
    await auth_db.execute("UPDATE password_resets SET expires_at = now() - interval '1 second'")

    response = await _confirm(accounts, sender.last_token)

    await assert_problem(response, 400, "invalid_reset_token")
    await accounts.login(account.username, account.password)


@pytest.mark.parametrize("token", ["garbage", "etpp_" + "A" * 43])
async def test_reset_unknown_token_is_400(reset_api, token):
    accounts = await reset_api()

    response = await _confirm(accounts, token)

    await assert_problem(response, 400, "invalid_reset_token")


async def test_reset_unacceptable_new_password_is_422_and_keeps_the_token(reset_api, sender):
    accounts = await reset_api()
    account = await accounts.register()
    await accounts.request_reset(account.email)

    refused = await _confirm(accounts, sender.last_token, "a" * 73)

    body = await assert_problem(refused, 422, "validation_failed")
    assert [error["field"] for error in body["errors"]] == ["new_password"]
    assert (await _confirm(accounts, sender.last_token)).status == 204
