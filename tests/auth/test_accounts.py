"""Registration, login and the token pair it returns."""

import asyncio
import threading
import uuid

import bcrypt
import jwt
import pytest
import yaml

from auth_service.models import EMAIL_PATTERN
from backend_common.paths import OPENAPI_ROOT
from tests.auth.accounts_api import (
    LOGIN,
    REGISTER,
    AccountsApi,
    new_user,
    sha256,
)
from tests.problems import assert_problem


def _fields(body: dict) -> set[str]:
    return {error["field"] for error in body["errors"]}


# --- register -------------------------------------------------------------------------------


async def test_register_new_user_returns_user_without_password(accounts, auth_db):
    response = await accounts.client.post(
        REGISTER, json=new_user(username="Ada", email="Ada@Example.org", password="s3cret pass")
    )

    assert response.status == 201, await response.text()
    body = await response.json()
    assert set(body) == {"id", "username", "email", "created_at"}
    assert (body["username"], body["email"]) == ("Ada", "Ada@Example.org")
    stored = await auth_db.fetchval(
        "SELECT password_hash FROM users WHERE id = $1", uuid.UUID(body["id"])
    )
    assert stored.startswith("$2b$04$")
    assert "s3cret pass" not in stored
    assert bcrypt.checkpw(b"s3cret pass", stored.encode())


@pytest.mark.parametrize(
    "password", ["a" * 8, "p" * 72, "€" * 24], ids=["8-chars", "72-ascii", "72-bytes-utf8"]
)
async def test_register_password_at_the_limits_is_accepted(accounts, password):
    account = await accounts.register(password=password)

    await accounts.login(account.username, password)


async def test_register_taken_username_in_other_case_conflicts(accounts):
    await accounts.register(username="grace")

    response = await accounts.client.post(REGISTER, json=new_user(username="GRACE"))

    await assert_problem(response, 409, "username_taken")


async def test_register_same_username_at_once_lets_one_through(accounts, auth_db):
    responses = await asyncio.gather(
        accounts.client.post(REGISTER, json=new_user(username="Twin")),
        accounts.client.post(REGISTER, json=new_user(username="TWIN")),
    )

    assert sorted(response.status for response in responses) == [201, 409]
    await assert_problem(max(responses, key=lambda r: r.status), 409, "username_taken")
    assert await auth_db.fetchval("SELECT count(*) FROM users") == 1


async def test_register_taken_email_in_other_case_conflicts(accounts, auth_db):
    await accounts.register(email="grace@example.org")

    response = await accounts.client.post(REGISTER, json=new_user(email="Grace@EXAMPLE.org"))

    await assert_problem(response, 409, "email_taken")
    assert await auth_db.fetchval("SELECT count(*) FROM users") == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short7!", "at least 8 characters"),
        ("a" * 73, "at most 72 bytes"),
        ("€" * 25, "at most 72 bytes"),  # 25 characters, 75 bytes
        ("a" * 2000, "at most 1024 characters"),
    ],
    ids=["7-chars", "73-ascii", "75-bytes-utf8", "huge"],
)
async def test_register_bad_password_is_422_naming_password(accounts, auth_db, password, message):
    response = await accounts.client.post(REGISTER, json=new_user(password=password))

    body = await assert_problem(response, 422, "validation_failed")
    [error] = body["errors"]
    assert error["field"] == "password"
    assert message in error["message"]
    assert await auth_db.fetchval("SELECT count(*) FROM users") == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"username": "ab"}, "username"),
        ({"username": "a" * 33}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "-dash-first"}, "username"),
        ({"username": 42}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.org"}, "email"),
        ({"email": "a" * 250 + "@example.org"}, "email"),
        ({"email": "nul\x00@example.org"}, "email"),
        ({"email": "zero\ufeffwidth@example.org"}, "email"),
        ({"email": "next\x85line@example.org"}, "email"),
        ({"email": "no\u00a0break@example.org"}, "email"),
        ({"is_admin": True}, "is_admin"),
    ],
)
async def test_register_bad_field_is_422(accounts, overrides, field):
    response = await accounts.client.post(REGISTER, json=new_user(**overrides))

    body = await assert_problem(response, 422, "validation_failed")
    assert _fields(body) == {field}


def test_email_pattern_is_the_specs():
    """One pattern, so the spec and the service agree on which addresses are valid."""
    spec = yaml.safe_load((OPENAPI_ROOT / "auth.yaml").read_text())

    assert spec["components"]["schemas"]["Email"]["pattern"] == EMAIL_PATTERN


async def test_register_missing_fields_are_422_each_named(accounts):
    response = await accounts.client.post(REGISTER, json={})

    body = await assert_problem(response, 422, "validation_failed")
    assert _fields(body) == {"username", "email", "password"}


async def test_register_malformed_json_is_400(accounts):
    response = await accounts.client.post(
        REGISTER, data=b'{"username": "ada",', headers={"Content-Type": "application/json"}
    )

    await assert_problem(response, 400, "malformed_json")


async def test_register_form_body_is_415(accounts):
    response = await accounts.client.post(
        REGISTER, data={"username": "ada", "email": "ada@example.org", "password": "x" * 10}
    )

    await assert_problem(response, 415, "unsupported_media_type")


async def test_register_body_over_limit_is_413(accounts):
    padding = "x" * (1024 * 1024)
    response = await accounts.client.post(REGISTER, json=new_user(padding=padding))

    await assert_problem(response, 413, "payload_too_large")


async def test_register_when_closed_is_403(service_app_client, auth_db):
    client = await service_app_client("auth", registration_open=False)

    response = await client.post(REGISTER, json=new_user())

    await assert_problem(response, 403, "registration_closed")
    assert await auth_db.fetchval("SELECT count(*) FROM users") == 0


# --- login ----------------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["Ada", "ada", "ADA", "ada@example.org", "Ada@EXAMPLE.ORG"])
async def test_login_by_username_or_email_in_any_case_succeeds(accounts, login):
    account = await accounts.register(username="Ada", email="ada@example.org")

    response = await accounts.client.post(
        LOGIN, json={"username": login, "password": account.password}
    )

    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900


async def test_login_access_token_is_eddsa_jwt_with_all_claims(accounts):
    account, tokens = await accounts.sign_up()

    header = jwt.get_unverified_header(tokens["access_token"])
    claims = await accounts.decode(tokens["access_token"])

    assert header["alg"] == "EdDSA"
    assert header["kid"] in {key["kid"] for key in (await accounts.jwks())["keys"]}
    assert set(claims) == {"sub", "iss", "aud", "iat", "exp", "jti", "sid"}
    assert claims["sub"] == account.id
    assert (claims["iss"], claims["aud"]) == ("etp-auth", "etp")
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]
    uuid.UUID(claims["sid"])


async def test_login_twice_starts_two_sessions(accounts):
    account, first = await accounts.sign_up()

    second = await accounts.login(account.username, account.password)

    first_claims = await accounts.decode(first["access_token"])
    second_claims = await accounts.decode(second["access_token"])
    assert first_claims["sid"] != second_claims["sid"]
    assert first_claims["jti"] != second_claims["jti"]
    assert first["refresh_token"] != second["refresh_token"]


async def test_login_stores_refresh_token_only_as_sha256(accounts, auth_db):
    account, tokens = await accounts.sign_up()

    rows = await auth_db.fetch(
        "SELECT family_id, user_id, token_hash, expires_at, spent_at, revoked_at"
        " FROM refresh_tokens"
    )

    [row] = rows
    assert row["token_hash"] == sha256(tokens["refresh_token"])
    assert str(row["user_id"]) == account.id
    assert (row["spent_at"], row["revoked_at"]) == (None, None)
    claims = await accounts.decode(tokens["access_token"])
    assert str(row["family_id"]) == claims["sid"]
    dumped = await auth_db.fetchval("SELECT string_agg(t::text, ' ') FROM refresh_tokens t")
    assert tokens["refresh_token"] not in dumped


async def test_login_wrong_password_and_unknown_user_answer_alike(accounts):
    account = await accounts.register()

    wrong_password = await accounts.client.post(
        LOGIN, json={"username": account.username, "password": "not the password"}
    )
    unknown_user = await accounts.client.post(
        LOGIN, json={"username": "nobody", "password": "not the password"}
    )
    unknown_email = await accounts.client.post(
        LOGIN, json={"username": "nobody@example.org", "password": account.password}
    )

    bodies = [
        await assert_problem(response, 401, "invalid_credentials")
        for response in (wrong_password, unknown_user, unknown_email)
    ]
    for body in bodies:
        del body["request_id"]
    assert bodies[0] == bodies[1] == bodies[2]


@pytest.mark.parametrize("known", [True, False], ids=["known-user", "unknown-user"])
async def test_login_password_over_72_bytes_is_clean_401(accounts, known):
    # The first 72 bytes are the real password: bcrypt must not silently truncate and accept.
    account = await accounts.register(password="p" * 72)
    login = account.username if known else "nobody"

    response = await accounts.client.post(LOGIN, json={"username": login, "password": "p" * 73})

    await assert_problem(response, 401, "invalid_credentials")


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        {"username": "", "password": "x"},
        {"username": "ada", "password": ""},
        {"user": "ada"},
        {"username": "nul\x00", "password": "whatever1"},
        {"username": "ada", "password": "x" * 1025},
    ],
    ids=["empty", "list", "no-username", "no-password", "unknown-field", "nul", "huge-password"],
)
async def test_login_bad_body_is_422(accounts, body):
    response = await accounts.client.post(LOGIN, json=body)

    await assert_problem(response, 422, "validation_failed")


class GatedCheckpw:
    """Wraps bcrypt.checkpw: records the threads it runs on and holds every call at a gate."""

    def __init__(self, real) -> None:
        self._real = real
        self._lock = threading.Lock()
        self._running = 0
        self.max_running = 0
        self.threads: set[str] = set()
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        with self._lock:
            self._running += 1
            self.max_running = max(self.max_running, self._running)
            self.threads.add(threading.current_thread().name)
        self.entered.set()
        # Bounded: if bcrypt ran on the event loop, this wait would stall the whole test.
        self.release.wait(timeout=5)
        try:
            return self._real(password, hashed)
        finally:
            with self._lock:
                self._running -= 1


async def test_login_storm_runs_bcrypt_off_the_event_loop(service_app_client, monkeypatch):
    client = await service_app_client("auth", bcrypt_rounds=12, bcrypt_threads=1)
    accounts = AccountsApi(client)
    account = await accounts.register()
    gate = GatedCheckpw(bcrypt.checkpw)
    monkeypatch.setattr(bcrypt, "checkpw", gate)

    async def login() -> int:
        response = await client.post(
            LOGIN, json={"username": account.username, "password": account.password}
        )
        return response.status

    logins = [asyncio.create_task(login()) for _ in range(8)]
    try:
        assert await asyncio.to_thread(gate.entered.wait, 5)
        health = await client.get("/health")
        pending_while_health_answered = sum(not task.done() for task in logins)
    finally:
        gate.release.set()

    assert health.status == 200
    assert pending_while_health_answered == 8
    assert await asyncio.gather(*logins) == [200] * 8
    assert gate.threads == {"bcrypt_0"}
    assert gate.max_running == 1
