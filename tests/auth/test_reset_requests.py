"""Password reset requests: throttled per client address and per email address asked for, and
no reset token ever reaches the log (docs/security.md)."""

import re
from typing import Any

import orjson
import pytest

from auth_service.appkeys import ACCOUNTS
from tests.auth.accounts_api import (
    DEFAULT_PASSWORD,
    LOGIN,
    RESET,
    RESET_CONFIRM,
    AccountsApi,
    assert_throttled,
    via,
)

NEW_PASSWORD = "new and improved"
TOKEN = re.compile(r"etpp_[A-Za-z0-9_\-]+")


@pytest.fixture
def accounts_with(service_app_client):
    async def create(**overrides: Any) -> AccountsApi:
        return AccountsApi(await service_app_client("auth", **overrides))

    return create


async def _request_reset(accounts: AccountsApi, email: str, address: str):
    response = await accounts.client.post(RESET, json={"email": email}, headers=via(address))
    await accounts.client.app[ACCOUNTS].drain()
    return response


async def test_reset_request_logs_that_it_was_asked_for_but_never_the_token(
    accounts_with, log_lines, auth_db
):
    accounts = await accounts_with()
    alice = await accounts.register()

    response = await _request_reset(accounts, alice.email, "203.0.113.10")

    assert response.status == 202
    assert await auth_db.fetchval("SELECT count(*) FROM password_resets") == 1
    lines = log_lines()
    assert not TOKEN.search(orjson.dumps(lines).decode()), lines
    assert [line["to"] for line in lines if line["event"] == "password_reset_requested"] == [
        alice.email
    ]


async def test_reset_mail_dir_holds_a_working_token_that_the_log_does_not(
    accounts_with, log_lines, tmp_path
):
    accounts = await accounts_with(reset_mail_dir=tmp_path / "mail")
    alice = await accounts.register()

    await _request_reset(accounts, alice.email, "203.0.113.10")

    [mail] = (tmp_path / "mail").iterdir()
    assert mail.stat().st_mode & 0o077 == 0
    text = mail.read_text()
    assert f"To: {alice.email}" in text
    token = TOKEN.search(text).group()
    assert token not in orjson.dumps(log_lines()).decode()
    confirmed = await accounts.client.post(
        RESET_CONFIRM, json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert confirmed.status == 204, await confirmed.text()
    await accounts.login(alice.username, NEW_PASSWORD)


async def test_reset_requests_for_one_email_over_its_allowance_are_429(accounts_with, auth_db):
    accounts = await accounts_with()
    alice = await accounts.register()
    for n in range(3):
        response = await _request_reset(accounts, alice.email.upper(), f"198.51.100.{n}")
        assert response.status == 202

    refused = await _request_reset(accounts, alice.email, "198.51.100.99")

    await assert_throttled(refused)
    assert await auth_db.fetchval("SELECT count(*) FROM password_resets") == 3
    still = await accounts.client.post(
        LOGIN, json={"username": alice.username, "password": DEFAULT_PASSWORD}
    )
    assert still.status == 200


async def test_reset_requests_from_one_address_over_its_allowance_are_429(accounts_with, auth_db):
    accounts = await accounts_with(credential_burst_per_address=3)
    emails = [(await accounts.register()).email for _ in range(4)]
    for email in emails[:3]:
        assert (await _request_reset(accounts, email, "198.51.100.66")).status == 202

    refused = await _request_reset(accounts, emails[3], "198.51.100.66")

    await assert_throttled(refused)
    assert await auth_db.fetchval("SELECT count(*) FROM password_resets") == 3
