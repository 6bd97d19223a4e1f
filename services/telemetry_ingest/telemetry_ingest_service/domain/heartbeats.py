"""Coalesced heartbeats: the latest time each sensor (and token) was heard from, written to the
database at most once per flush for all of them, not once per batch."""

import uuid
from datetime import datetime
from typing import TypeVar

K = TypeVar("K")


class Heartbeats:
    def __init__(self) -> None:
        self._sensors: dict[uuid.UUID, datetime] = {}
        self._tokens: dict[bytes, datetime] = {}

    def note(self, sensor_id: uuid.UUID, digest: bytes, at: datetime) -> None:
        _keep_latest(self._sensors, sensor_id, at)
        _keep_latest(self._tokens, digest, at)

    def take(self) -> tuple[dict[uuid.UUID, datetime], dict[bytes, datetime]]:
        """What was noted since the last take."""
        taken = self._sensors, self._tokens
        self._sensors, self._tokens = {}, {}
        return taken

    def put_back(self, sensors: dict[uuid.UUID, datetime], tokens: dict[bytes, datetime]) -> None:
        """Returns a take that could not be written, so that the next flush tries again."""
        for sensor_id, at in sensors.items():
            _keep_latest(self._sensors, sensor_id, at)
        for digest, at in tokens.items():
            _keep_latest(self._tokens, digest, at)


def _keep_latest(latest: dict[K, datetime], key: K, at: datetime) -> None:
    if key not in latest or latest[key] < at:
        latest[key] = at
