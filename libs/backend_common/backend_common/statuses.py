"""Status vocabularies that cross the experiment ↔ telemetry seam.

The experiment service owns these states; the telemetry service reads them (a run or capture
session that takes readings, a sensor's liveness) through the views the experiment migrations
define. One vocabulary, spelled once, for both.
"""

from enum import Enum, StrEnum


class RunStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ARCHIVED = "archived"


class CaptureStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    ARCHIVED = "archived"
    BACKFILLING = "backfilling"


class SensorStatus(StrEnum):
    """Computed from the last heartbeat (see experiment_service.domain.sensors.Liveness)."""

    ONLINE = "online"
    DELAYED = "delayed"
    OFFLINE = "offline"
    NEVER_SEEN = "never_seen"


class Arrival(Enum):
    """How a run or capture session takes data logged into it now (readings, metrics)."""

    ON_TIME = "on_time"
    LATE = "late"  # it has finished: the data is kept, marked late
    REFUSED = "refused"  # it is archived: nothing more goes in


_FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED})


def arrival(status: RunStatus | CaptureStatus | str) -> Arrival:
    """A finished (succeeded or failed) run or capture session takes data marked late; an
    archived one refuses it; any other takes it on time."""
    if status == RunStatus.ARCHIVED:
        return Arrival.REFUSED
    return Arrival.LATE if status in _FINISHED else Arrival.ON_TIME
