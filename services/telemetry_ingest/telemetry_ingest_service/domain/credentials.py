"""Sensor tokens at the door of the ingest path: checked against stored SHA-256 digests.

Digests are cached per sensor for `ttl` seconds, with the channels the sensor declares; a change
to a sensor's tokens in the database (rotation, revocation) or to its channels is announced on
the `sensor_tokens` channel and drops its entry at once.
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


@dataclass(frozen=True)
class SensorKeys:
    """What the door knows of a sensor: its token digests and its declared channels (None:
    it declares none)."""

    digests: Digests
    channels: frozenset[str] | None = None


DigestSource = Callable[[uuid.UUID], Awaitable[SensorKeys]]


def stored_digests(db: Database, *, timeout: float) -> DigestSource:
    """The digest source of the database: a sensor's working tokens and declared channels, or
    TimeoutError after `timeout` seconds."""

    async def load(sensor_id: uuid.UUID) -> SensorKeys:
        async def fetch() -> SensorKeys:
            async with db.connection() as conn:
                repository = TelemetryRepository(conn)
                digests = await repository.token_digests(sensor_id)
                channels = await repository.declared_channels(sensor_id)
            return SensorKeys(digests, None if channels is None else frozenset(channels))

        return await within(timeout, fetch())

    return load


@dataclass(frozen=True)
class SensorCredential:
    sensor_id: uuid.UUID
    digest: bytes
    # The channels the sensor declares (None: any channel is taken).
    channels: frozenset[str] | None = None


@dataclass
class _Entry:
    keys: SensorKeys
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
        keys = await self._keys(sensor_id, token)
        digest = sensor_tokens.matches(token, self._working(keys.digests))
        if digest is None:
            raise InvalidToken()
        return SensorCredential(sensor_id, digest, keys.channels)

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

    async def _keys(self, sensor_id: uuid.UUID, token: str) -> SensorKeys:
        now = time.monotonic()
        entry = self._cache.get(sensor_id)
        if entry is not None and entry.fresh_until > now:
            known = sensor_tokens.matches(token, self._working(entry.keys.digests)) is not None
            if known or now - entry.loaded_at < _RELOAD_INTERVAL:
                return entry.keys
        try:
            keys = await self._load(sensor_id)
        except self._unavailable:
            if entry is None:
                raise TokenCheckUnavailable() from None
            return entry.keys
        self._cache[sensor_id] = _Entry(keys, now + self._ttl, now)
        self._cache.move_to_end(sensor_id)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return keys
