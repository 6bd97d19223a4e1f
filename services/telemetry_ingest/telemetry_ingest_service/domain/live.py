"""Live readings: telemetry's side of the shared live streams (backend_common.live).

Each stored batch sends `NOTIFY telemetry` with a pointer (batch id, sensor, run, session); a
stream's Filter says from it which batches it wants; the hub reads the rest from the table
through ReadingRepository (a batch's readings, the batches a reconnecting stream missed). An open
stream's access is re-checked as it runs: `access_check` ends it when its caller may no longer
read what it streams, or no longer see raw values in a raw-layer stream.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend_common.live import ACCESS_REVOKED, StreamEnded
from telemetry_ingest_service.domain.errors import (
    CaptureSessionNotFound,
    RawValuesHidden,
    RunNotFound,
    SensorNotFound,
)

# Why a raw-layer stream was ended while it ran: its raw values are now hidden.
RAW_VALUES_HIDDEN = "raw_values_hidden"


@dataclass(frozen=True)
class Filter:
    """Which batches a stream wants: of these sensors, this run, this capture session."""

    sensor_ids: frozenset[uuid.UUID] = frozenset()
    run_id: uuid.UUID | None = None
    capture_session_id: uuid.UUID | None = None

    def wants(self, pointer: dict[str, Any]) -> bool:
        if self.sensor_ids and uuid.UUID(pointer["sensor"]) not in self.sensor_ids:
            return False
        if self.run_id is not None and pointer.get("run") != str(self.run_id):
            return False
        if self.capture_session_id is not None:
            return pointer.get("session") == str(self.capture_session_id)
        return True


def access_check(
    fields: Callable[[], Awaitable[tuple[str, ...]]],
) -> Callable[[], Awaitable[tuple[str, ...]]]:
    """A stream's re-check: the reading fields its caller sees now, or StreamEnded."""

    async def check() -> tuple[str, ...]:
        try:
            return await fields()
        except RawValuesHidden:
            raise StreamEnded(RAW_VALUES_HIDDEN) from None
        except (SensorNotFound, RunNotFound, CaptureSessionNotFound):
            raise StreamEnded(ACCESS_REVOKED) from None

    return check
