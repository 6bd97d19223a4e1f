"""bcrypt is no amplifier: what a lookup can refuse is refused before hashing, new-password hashes
queue boundedly (503 past the bound), and logins keep their own threads under a flood."""

import asyncio
import secrets
import threading

import bcrypt
import pytest

from tests.auth.accounts_api import LOGIN, REGISTER, RESET_CONFIRM, AccountsApi, new_user
from tests.plugins.waiting import eventually
from tests.problems import assert_problem

LOGIN_TIMEOUT = 5.0


class GatedHashpw:
    """Wraps bcrypt.hashpw: counts the calls and, once closed, holds each at a gate."""

    def __init__(self, real) -> None:
        self._real = real
        self._lock = threading.Lock()
        self.calls = 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self, password: bytes, salt: bytes) -> bytes:
        with self._lock:
            self.calls += 1
        # Bounded: a test that forgets to open the gate must not hang the session.
        self.release.wait(timeout=10)
        return self._real(password, salt)


@pytest.fixture
def hashpw(monkeypatch):
    gate = GatedHashpw(bcrypt.hashpw)
    monkeypatch.setattr(bcrypt, "hashpw", gate)
    yield gate
    gate.release.set()


async def _login(client, account) -> int:
    response = await client.post(
        LOGIN, json={"username": account.username, "password": account.password}
    )
    return response.status


async def test_reset_confirm_flood_with_random_tokens_hashes_nothing_and_login_completes(
    service_app_client, hashpw, auth_db
):
    accounts = AccountsApi(await service_app_client("auth"))
    account = await accounts.register()
    before = hashpw.calls

    async def confirm():
        body = {"token": "etpp_" + secrets.token_urlsafe(32), "new_password": "new and improved"}
        return await accounts.client.post(RESET_CONFIRM, json=body)

    flood = [asyncio.create_task(confirm()) for _ in range(24)]
    login = await asyncio.wait_for(_login(accounts.client, account), LOGIN_TIMEOUT)

    for response in await asyncio.gather(*flood):
        await assert_problem(response, 400, "invalid_reset_token")
    assert hashpw.calls == before
    assert login == 200
    assert await auth_db.fetchval("SELECT count(*) FROM password_resets") == 0


async def test_register_taken_username_or_email_hashes_nothing(service_app_client, hashpw):
    accounts = AccountsApi(await service_app_client("auth"))
    taken = await accounts.register()
    before = hashpw.calls

    by_name = await accounts.client.post(REGISTER, json=new_user(username=taken.username.upper()))
    by_email = await accounts.client.post(REGISTER, json=new_user(email=taken.email.upper()))

    await assert_problem(by_name, 409, "username_taken")
    await assert_problem(by_email, 409, "email_taken")

    assert hashpw.calls == before


async def test_registration_flood_fills_the_bounded_queue_with_503_while_logins_complete(
    service_app_client, hashpw, auth_db
):
    client = await service_app_client(
        "auth", bcrypt_threads=1, bcrypt_hash_threads=1, bcrypt_queue=4
    )
    account = await AccountsApi(client).register()
    hashpw.release.clear()

    flood = [asyncio.create_task(client.post(REGISTER, json=new_user())) for _ in range(10)]
    try:
        # One hashing and four waiting; the other five are refused at once.
        await eventually(lambda: sum(task.done() for task in flood) == 5, within=LOGIN_TIMEOUT)
        login = await asyncio.wait_for(_login(client, account), LOGIN_TIMEOUT)
    finally:
        hashpw.release.set()
    responses = await asyncio.gather(*flood)

    assert login == 200
    refused = [response for response in responses if response.status != 201]
    assert len(refused) == 5
    for response in refused:
        await assert_problem(response, 503, "server_busy")
        assert response.headers["Retry-After"] == "1"
    assert await auth_db.fetchval("SELECT count(*) FROM users") == 6
