"""Sensor tokens: `etps_<sensor id as 32 hex digits>_<secret>`.

The experiment service mints them and keeps only their SHA-256 digests; telemetry ingest finds
the sensor from the token itself (no scan of every digest) and compares digests. A token is
shown once.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass

PREFIX = "etps_"
SECRET_BYTES = 32
PREVIEW_CHARS = 4
_KEY_LENGTH = 32


@dataclass(frozen=True)
class MintedToken:
    token: str
    digest: bytes
    preview: str


def mint(sensor_id: uuid.UUID) -> MintedToken:
    token = f"{PREFIX}{sensor_id.hex}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return MintedToken(token=token, digest=digest(token), preview=preview(token))


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def preview(token: str) -> str:
    """What may be shown of a token: its last few characters."""
    return "…" + token[-PREVIEW_CHARS:]


def sensor_of(token: str) -> uuid.UUID | None:
    """The sensor a well-formed token names, else None (the token is not checked)."""
    if not token.startswith(PREFIX) or token[len(PREFIX) + _KEY_LENGTH : len(PREFIX) + 33] != "_":
        return None
    try:
        return uuid.UUID(hex=token[len(PREFIX) : len(PREFIX) + _KEY_LENGTH])
    except ValueError:
        return None


def matches(token: str, stored_digests: list[bytes]) -> bytes | None:
    """The stored digest `token` matches (compared in constant time), else None."""
    presented = digest(token)
    found = None
    for stored in stored_digests:
        if secrets.compare_digest(presented, stored):
            found = stored
    return found
