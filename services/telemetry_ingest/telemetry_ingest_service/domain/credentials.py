"""Sensor tokens at the door of the ingest path: checked against stored SHA-256 digests.

Digests are cached per sensor for `ttl` seconds; a change to a sensor's tokens in the database
(rotation, revocation) is announced on the `sensor_tokens` channel and drops its entry at once.
A token that matches no cached digest is looked up again, at most once a second per sensor, so
forged tokens cannot turn into a query each. While the database is unreachable, the last known
digests still serve (they are what the database held when it was last seen).
"""

import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from backend_common import sensor_tokens
from backend_common.clock import Clock, utc_now
from backend_common.db import Database, within
from telemetry_ingest_service.domain.errors import InvalidToken, TokenCheckUnavailable
from telemetry_ingest_service.repositories.telemetry import TelemetryRepository

CHANNEL = "sensor_tokens"
_RELOAD_INTERVAL = 1.0

# A sensor's token digests, each with the instant it stops working (None: no end).
Digests = list[tuple[bytes, datetime | None]]
DigestSource = Callable[[uuid.UUID], Awaitable[Digests]]


def stored_digests(db: Database, *, timeout: float) -> DigestSource:
    """The digest source of the database: a sensor's working tokens, or TimeoutError after
    `timeout` seconds."""

    async def load(sensor_id: uuid.UUID) -> Digests:
        async def fetch() -> Digests:
            async with db.connection() as conn:
                return await TelemetryRepository(conn).token_digests(sensor_id)

        return await within(timeout, fetch())

    return load


@dataclass(frozen=True)
class SensorCredential:
    sensor_id: uuid.UUID
    digest: bytes


@dataclass
class _Entry:
    digests: Digests
    fresh_until: float
    loaded_at: float


class Credentials:
    def __init__(
        self,
        load: DigestSource,
        *,
        ttl: float,
        unavailable: tuple[type[BaseException], ...],
        clock: Clock = utc_now,
        max_entries: int = 100_000,
    ) -> None:
        self._load = load
        self._clock = clock
        self._ttl = ttl
        self._unavailable = unavailable
        self._max_entries = max_entries
        self._cache: OrderedDict[uuid.UUID, _Entry] = OrderedDict()

    async def verify(self, token: str) -> SensorCredential:
        """The sensor the token belongs to; InvalidToken if it works for none (now)."""
        sensor_id = sensor_tokens.sensor_of(token)
        if sensor_id is None:
            raise InvalidToken("This is not a sensor token.")
        digest = sensor_tokens.matches(token, self._working(await self._digests(sensor_id, token)))
        if digest is None:
            raise InvalidToken()
        return SensorCredential(sensor_id, digest)

    def forget(self, sensor_id: uuid.UUID | None = None) -> None:
        """Drops one sensor's entry, or every entry."""
        if sensor_id is None:
            self._cache.clear()
        else:
            self._cache.pop(sensor_id, None)

    def _working(self, digests: Digests) -> list[bytes]:
        """The digests whose grace period (if any) has not ended: one ends without notice."""
        now = self._clock()
        return [digest for digest, ends in digests if ends is None or ends > now]

    async def _digests(self, sensor_id: uuid.UUID, token: str) -> Digests:
        now = time.monotonic()
        entry = self._cache.get(sensor_id)
        if entry is not None and entry.fresh_until > now:
            known = sensor_tokens.matches(token, self._working(entry.digests)) is not None
            if known or now - entry.loaded_at < _RELOAD_INTERVAL:
                return entry.digests
        try:
            digests = await self._load(sensor_id)
        except self._unavailable:
            if entry is None:
                raise TokenCheckUnavailable() from None
            return entry.digests
        self._cache[sensor_id] = _Entry(digests, now + self._ttl, now)
        self._cache.move_to_end(sensor_id)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return digests
