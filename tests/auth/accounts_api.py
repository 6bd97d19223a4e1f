"""Helpers for the accounts and token tests: an API client that asserts statuses, test users,
a recording reset sender and access tokens minted with the auth service's own key."""

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from auth_service.appkeys import ACCOUNTS
from auth_service.domain.models import User
from tests.problems import assert_problem
from tests.tokens import SigningKey

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
PASSWORD = "/api/v1/auth/password"
RESET = "/api/v1/auth/password-reset"
RESET_CONFIRM = "/api/v1/auth/password-reset/confirm"
JWKS = "/.well-known/jwks.json"

DEFAULT_PASSWORD = "correct horse battery"
_numbers = itertools.count(1)


def sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def auth_headers(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def via(address: str) -> dict[str, str]:
    """Headers of a request the gateway forwards from a client at `address` (the test client is
    on loopback, a trusted proxy by default)."""
    return {"X-Forwarded-For": address}


async def assert_throttled(response: aiohttp.ClientResponse) -> None:
    """A 429 problem with Retry-After and the RateLimit fields of the allowance that refused."""
    await assert_problem(response, 429, "too_many_requests")
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1, retry_after
    assert int(response.headers["RateLimit-Limit"]) >= 1, dict(response.headers)
    assert response.headers["RateLimit-Remaining"] == "0", dict(response.headers)
    assert int(response.headers["RateLimit-Reset"]) >= retry_after, dict(response.headers)


def new_user(**overrides: Any) -> dict[str, Any]:
    """A registration body with a fresh username and email."""
    n = next(_numbers)
    return {
        "username": f"user{n}",
        "email": f"user{n}@example.org",
        "password": DEFAULT_PASSWORD,
        **overrides,
    }


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    email: str
    password: str


async def _json_with_status(response: Any, status: int) -> Any:
    text = await response.text()
    assert response.status == status, f"expected {status}, got {response.status}: {text}"
    return await response.json() if text else None


class AccountsApi:
    """The accounts routes; each call asserts the expected status and returns the parsed body."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def request_reset(self, email: str) -> aiohttp.ClientResponse:
        """Asks for a reset and waits for the service's background delivery to finish."""
        response = await self.client.post(RESET, json={"email": email})
        await self.client.app[ACCOUNTS].drain()
        return response

    async def register(self, **overrides: Any) -> Account:
        data = new_user(**overrides)
        body = await _json_with_status(await self.client.post(REGISTER, json=data), 201)
        return Account(
            id=body["id"], username=body["username"], email=body["email"], password=data["password"]
        )

    async def login(self, login: str, password: str) -> dict[str, Any]:
        response = await self.client.post(LOGIN, json={"username": login, "password": password})
        return await _json_with_status(response, 200)

    async def sign_up(self, **overrides: Any) -> tuple[Account, dict[str, Any]]:
        """Registers a user and logs them in: the account and its first token pair."""
        account = await self.register(**overrides)
        return account, await self.login(account.username, account.password)

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        response = await self.client.post(REFRESH, json={"refresh_token": refresh_token})
        return await _json_with_status(response, 200)

    async def logout(self, refresh_token: str) -> None:
        response = await self.client.post(LOGOUT, json={"refresh_token": refresh_token})
        await _json_with_status(response, 204)

    async def me(self, access_token: str) -> dict[str, Any]:
        response = await self.client.get(ME, headers=auth_headers(access_token))
        return await _json_with_status(response, 200)

    async def change_password(self, access_token: str, old: str, new: str) -> None:
        response = await self.client.post(
            PASSWORD,
            json={"old_password": old, "new_password": new},
            headers=auth_headers(access_token),
        )
        await _json_with_status(response, 204)

    async def jwks(self) -> dict[str, Any]:
        return await _json_with_status(await self.client.get(JWKS), 200)

    async def decode(self, access_token: str) -> dict[str, Any]:
        """The claims of an access token, verified against the service's published JWKS."""
        keys = jwt.PyJWKSet.from_dict(await self.jwks())
        key = keys[jwt.get_unverified_header(access_token)["kid"]]
        return jwt.decode(
            access_token, key=key, algorithms=["EdDSA", "ES256"], audience="etp", issuer="etp-auth"
        )


@dataclass
class RecordingSender:
    """A ResetSender that keeps what it was asked to deliver."""

    sent: list[tuple[User, str, datetime]] = field(default_factory=list)

    async def send_reset(self, *, user: User, token: str, expires_at: datetime) -> None:
        self.sent.append((user, token, expires_at))

    @property
    def last_token(self) -> str:
        assert self.sent, "no reset token was sent"
        return self.sent[-1][1]


def service_key(keys_dir: Path) -> SigningKey:
    """The auth service's active signing key (the last `<kid>.pem`), to mint tokens with."""
    path = sorted(keys_dir.glob("*.pem"))[-1]
    private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private_key, ed25519.Ed25519PrivateKey), path
    return SigningKey(kid=path.stem, algorithm="EdDSA", private_key=private_key)
