"""Which run and capture session a batch belongs to, and whether it arrives late.

Explicit `run_id` / `capture_session_id` must name a run the sensor is bound to and a session of
that run; a run alone takes its running session, if any. Without them, a batch goes to the
running capture session of a run the sensor is bound to (the most recently started, if several),
else to none. A finished (succeeded or failed) run or session still takes readings, marked late;
an archived one refuses them.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from backend_common.statuses import Arrival, CaptureStatus, arrival
from telemetry_ingest_service.domain.errors import (
    CaptureSessionArchived,
    CaptureSessionMismatch,
    RunArchived,
    SensorNotBound,
)


@dataclass(frozen=True)
class Binding:
    """A run the sensor is bound to, with the session that matters (asked for, or running)."""

    run_id: uuid.UUID
    run_status: str
    session_id: uuid.UUID | None
    session_status: str | None
    session_started_at: datetime | None


@dataclass(frozen=True)
class Attachment:
    run_id: uuid.UUID | None
    capture_session_id: uuid.UUID | None
    late: bool


NONE = Attachment(None, None, late=False)


def attach(
    bindings: list[Binding], *, run_id: uuid.UUID | None, session_id: uuid.UUID | None
) -> Attachment:
    if run_id is None and session_id is None:
        running = [
            b
            for b in bindings
            if b.session_id is not None and b.session_status == CaptureStatus.RUNNING
        ]
        if not running:
            return NONE
        latest = max(running, key=lambda b: b.session_started_at or datetime.min)
        return _checked(latest)
    if session_id is not None:
        matches = [b for b in bindings if b.session_id == session_id]
        if not matches or (run_id is not None and matches[0].run_id != run_id):
            raise CaptureSessionMismatch()
        return _checked(matches[0])
    for binding in bindings:
        if binding.run_id == run_id:
            return _checked(binding)
    raise SensorNotBound()


def _checked(binding: Binding) -> Attachment:
    run = arrival(binding.run_status)
    if run is Arrival.REFUSED:
        raise RunArchived()
    session = Arrival.ON_TIME if binding.session_status is None else arrival(binding.session_status)
    if session is Arrival.REFUSED:
        raise CaptureSessionArchived()
    late = Arrival.LATE in (run, session)
    return Attachment(binding.run_id, binding.session_id, late)
