"""What the gateway reads of an access token without verifying it: only for decisions the
service verifies again (whether to refresh first, what the per-session rate limit counts)."""

import base64
import binascii
import functools
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

# Refresh a little before expiry, so the token does not lapse on its way to the service.
EXPIRY_MARGIN = 10


@functools.lru_cache(maxsize=4096)
def _unverified_claims(token: str) -> Mapping[str, Any]:
    """The token's claims, unchecked. Kept for the tokens seen last, as every request of a
    session carries the same one."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        claims = None
    return MappingProxyType(claims if isinstance(claims, dict) else {})


def expires_soon(token: str) -> bool:
    """Whether the access token's `exp` is past, or nearly."""
    exp = _unverified_claims(token).get("exp")
    return not isinstance(exp, int | float) or exp - EXPIRY_MARGIN <= time.time()


# An API key (etpk_<32 hex digits of its id>_<secret>) is counted by its id: guessing at the
# secret of one key does not get a fresh allowance for each guess.
_API_KEY_ID_END = len("etpk_") + 32


def session_key(token: str) -> str:
    """What the per-session rate limit counts by: an API key's id, a token's session id, else
    the token."""
    if token.startswith("etpk_"):
        return token[:_API_KEY_ID_END]
    claims = _unverified_claims(token)
    return str(claims.get("sid") or claims.get("sub") or token)
