"""API keys in the auth tests: create one through the API, and call as it."""

import dataclasses
import hashlib
from typing import Any

from tests.auth.conftest import Account, AuthApi

KEYS = "/api/v1/api-keys"
INTROSPECT = "/api/v1/auth/api-key"
KEY_PATTERN = r"^etpk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$"


def sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def as_key(account: Account, key: str) -> Account:
    """`account` calling with an API key instead of its access token."""
    return dataclasses.replace(account, headers=bearer(key))


async def create_key(api: AuthApi, owner: Account, **body: Any) -> dict[str, Any]:
    """A new key of `owner` (the answer, with the secret in `key`)."""
    return await api.post(KEYS, owner, json={"name": "ci", **body}, status=201)


async def key_caller(api: AuthApi, owner: Account, **body: Any) -> Account:
    """`owner` calling through a new key with that scope."""
    return as_key(owner, (await create_key(api, owner, **body))["key"])
