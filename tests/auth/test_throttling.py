"""Credential routes are throttled where they are served: per client address and per login name,
without letting a guesser lock the real user out (docs/security.md)."""

from ipaddress import ip_network
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from auth_service.api.clients import ClientAddresses
from tests.auth.accounts_api import (
    DEFAULT_PASSWORD,
    LOGIN,
    REGISTER,
    RESET_CONFIRM,
    assert_throttled,
    new_user,
    via,
)
from tests.problems import assert_problem

REAL_USER_ADDRESS = "203.0.113.10"
ATTACKER_ADDRESS = "198.51.100.66"


@pytest.fixture
def auth_app(service_app_client):
    async def create(**overrides: Any):
        return await service_app_client("auth", **overrides)

    return create


async def _register(client, address: str, **overrides: Any) -> dict[str, Any]:
    data = new_user(**overrides)
    response = await client.post(REGISTER, json=data, headers=via(address))
    assert response.status == 201, await response.text()
    return data


async def _login(client, login: str, password: str, address: str):
    return await client.post(
        LOGIN, json={"username": login, "password": password}, headers=via(address)
    )


async def _sessions(auth_db, username: str) -> int:
    return await auth_db.fetchval(
        "SELECT count(*) FROM refresh_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE u.username = $1",
        username,
    )


@pytest.mark.parametrize(
    "attacker_addresses",
    [
        pytest.param([ATTACKER_ADDRESS] * 41, id="one-address"),
        pytest.param([f"198.51.100.{n}" for n in range(1, 42)], id="forty-one-addresses"),
    ],
)
async def test_login_forty_wrong_guesses_then_right_password_is_429_but_real_user_gets_in(
    auth_app, auth_db, attacker_addresses
):
    client = await auth_app()
    alice = await _register(client, REAL_USER_ADDRESS)
    first = await _login(client, alice["username"], DEFAULT_PASSWORD, REAL_USER_ADDRESS)
    assert first.status == 200, await first.text()

    statuses = []
    for address in attacker_addresses[:40]:
        response = await _login(client, alice["username"], "wrong guess", address)
        statuses.append(response.status)
        if response.status == 429:
            await assert_throttled(response)
    right = await _login(client, alice["username"], DEFAULT_PASSWORD, attacker_addresses[40])

    await assert_throttled(right)
    assert set(statuses) == {401, 429}
    assert statuses.count(401) <= 10
    assert await _sessions(auth_db, alice["username"]) == 1
    real = await _login(client, alice["username"], DEFAULT_PASSWORD, REAL_USER_ADDRESS)
    assert real.status == 200, await real.text()
    assert await _sessions(auth_db, alice["username"]) == 2


async def test_login_by_email_from_known_address_is_not_limited_by_guesses_on_it(auth_app):
    client = await auth_app()
    alice = await _register(client, REAL_USER_ADDRESS)
    assert (await _login(client, alice["email"], DEFAULT_PASSWORD, REAL_USER_ADDRESS)).status == 200

    for n in range(20):
        await _login(client, alice["email"].upper(), "wrong guess", f"198.51.100.{n}")
    refused = await _login(client, alice["email"], DEFAULT_PASSWORD, ATTACKER_ADDRESS)

    await assert_throttled(refused)
    real = await _login(client, alice["email"], DEFAULT_PASSWORD, REAL_USER_ADDRESS)
    assert real.status == 200, await real.text()


async def test_login_guesses_at_unknown_users_from_one_address_are_429(auth_app):
    client = await auth_app(credential_burst_per_address=5)

    statuses = [
        (await _login(client, f"nobody{n}", "guess", ATTACKER_ADDRESS)).status for n in range(8)
    ]

    assert statuses == [401] * 5 + [429] * 3


async def test_register_over_address_allowance_is_429_and_creates_no_user(auth_app, auth_db):
    client = await auth_app(credential_burst_per_address=3)
    for _ in range(3):
        await _register(client, ATTACKER_ADDRESS)

    refused = await client.post(REGISTER, json=new_user(), headers=via(ATTACKER_ADDRESS))

    await assert_throttled(refused)
    assert await auth_db.fetchval("SELECT count(*) FROM users") == 3
    await _register(client, REAL_USER_ADDRESS)


async def test_reset_confirm_over_address_allowance_is_429(auth_app):
    client = await auth_app(credential_burst_per_address=3)
    body = {"token": "etpp_guess", "new_password": "new and improved"}
    for _ in range(3):
        response = await client.post(RESET_CONFIRM, json=body, headers=via(ATTACKER_ADDRESS))
        await assert_problem(response, 400, "invalid_reset_token")

    refused = await client.post(RESET_CONFIRM, json=body, headers=via(ATTACKER_ADDRESS))

    await assert_throttled(refused)


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(auth_app):
    client = await auth_app(credential_burst_per_address=3, trusted_proxies=[])

    statuses = [
        (await _login(client, f"nobody{n}", "guess", f"198.51.100.{n}")).status for n in range(5)
    ]

    assert statuses == [401] * 3 + [429] * 2


# --- the client address ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        pytest.param("198.51.100.7", None, "198.51.100.7", id="direct"),
        pytest.param("198.51.100.7", "10.1.1.1", "198.51.100.7", id="untrusted-peer-forged"),
        pytest.param("127.0.0.1", "198.51.100.7", "198.51.100.7", id="via-proxy"),
        pytest.param("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7", id="client-forged"),
        pytest.param("127.0.0.1", "198.51.100.7, 127.0.0.1", "198.51.100.7", id="two-proxies"),
        pytest.param("::ffff:127.0.0.1", "2001:DB8::1", "2001:db8::1", id="ipv6-normalised"),
        pytest.param("127.0.0.1", None, None, id="proxy-own-call"),
        pytest.param("127.0.0.1", "127.0.0.2", "127.0.0.2", id="all-trusted"),
    ],
)
def test_client_address_believes_only_hops_added_by_trusted_proxies(peer, forwarded_for, expected):
    addresses = ClientAddresses([ip_network("127.0.0.0/8"), ip_network("::1/128")])
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    request = make_mocked_request("POST", LOGIN, headers=headers).clone(remote=peer)

    assert addresses.of(request) == expected
