"""Status vocabularies that cross the experiment ↔ telemetry seam.

The experiment service owns these states; the telemetry service reads them (a run or capture
session that takes readings, a sensor's liveness) through the views the experiment migrations
define. One vocabulary, spelled once, for both.
"""

from enum import StrEnum


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
