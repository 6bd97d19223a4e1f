import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backend_common.statuses import CaptureStatus, RunStatus, SensorStatus


class ExperimentStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    ARCHIVED = "archived"


class Experiment(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    description: str
    tags: list[str]
    owner_id: uuid.UUID
    status: ExperimentStatus
    experiment_type: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class Run(BaseModel):
    id: uuid.UUID
    experiment_id: uuid.UUID
    project_id: uuid.UUID
    name: str
    params: dict[str, Any]
    git_sha: str | None
    env: dict[str, Any]
    tags: list[str]
    notes: str
    metadata: dict[str, Any]
    status: RunStatus
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    # Why the service failed the run by itself (`stale`); None otherwise.
    failure_reason: str | None = None
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StatusChange:
    """A run's new status and the instants that come with it (None: left as they are)."""

    status: RunStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    failure_reason: str | None = None

    def columns(self) -> dict[str, object]:
        return {
            name: value
            for name, value in (
                ("status", self.status),
                ("started_at", self.started_at),
                ("finished_at", self.finished_at),
                ("duration_seconds", self.duration_seconds),
                ("failure_reason", self.failure_reason),
            )
            if value is not None
        }


class DataGap(BaseModel):
    """A sensor bound to the session's run was offline from `from_` to `to` (None: still is)."""

    model_config = ConfigDict(
        serialize_by_alias=True, validate_by_name=True, validate_by_alias=True
    )

    sensor_id: uuid.UUID
    from_: datetime = Field(alias="from")
    to: datetime | None


class CaptureSession(BaseModel):
    id: uuid.UUID
    run_id: uuid.UUID
    project_id: uuid.UUID
    ordinal_number: int
    status: CaptureStatus
    started_at: datetime | None
    stopped_at: datetime | None
    initiated_by: uuid.UUID | None
    notes: str
    failure_reason: str | None
    # A session started with a duration stops itself then.
    planned_stop_at: datetime | None = None
    # Stretches in which a sensor bound to the run was offline while the session ran.
    gaps: list[DataGap] = []
    created_at: datetime
    updated_at: datetime


class AuditEntry(BaseModel):
    id: int
    project_id: uuid.UUID
    actor_id: uuid.UUID | None
    actor_role: str | None
    action: str
    entity_type: str
    entity_id: uuid.UUID
    parent_id: uuid.UUID | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    at: datetime


class ProfileStatus(StrEnum):
    """Computed from the profile's validity and the time of day."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    DEPRECATED = "deprecated"


class GraceToken(BaseModel):
    """A rotated-out sensor token that still works until `expires_at`."""

    token_preview: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


class SensorChannel(BaseModel):
    """A channel a sensor declares (the `signal` of its readings) and its unit."""

    name: str
    unit: str | None = None


class Sensor(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    project_ids: list[uuid.UUID]
    name: str
    type: str
    input_unit: str
    display_unit: str
    description: str
    channels: list[SensorChannel]
    status: SensorStatus
    last_heartbeat: datetime | None
    active_profile_id: uuid.UUID | None
    token_preview: str | None
    token_created_at: datetime | None
    token_last_used_at: datetime | None
    grace_tokens: list[GraceToken]
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime


class SensorWithToken(Sensor):
    """The answer to creation and rotation: the only time the token is shown."""

    token: str


class ConversionProfile(BaseModel):
    id: uuid.UUID
    sensor_id: uuid.UUID
    version: str
    kind: str
    # None for a reader who may not see the sensor's raw values (domain.visibility).
    payload: dict[str, Any] | None
    description: str
    status: ProfileStatus
    valid_from: datetime | None
    valid_to: datetime | None
    deprecated_at: datetime | None
    created_by: uuid.UUID
    published_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class BackfillStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Backfill(BaseModel):
    """The recomputation of a sensor's stored readings in [range_from, range_to) after a profile
    was published for a past start; progress as of `updated_at`."""

    id: uuid.UUID
    sensor_id: uuid.UUID
    profile_id: uuid.UUID
    range_from: datetime
    range_to: datetime | None
    status: BackfillStatus
    rows_total: int
    rows_done: int
    error: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class BackfillProgress(Backfill):
    """A backfill as shown: readings per second so far and the seconds still to go (null
    before the first chunk, or once finished)."""

    rate: float | None
    eta_seconds: float | None


class PublishedProfile(ConversionProfile):
    """A profile published for a past start, and the backfill recomputing its readings."""

    backfill_id: uuid.UUID


class PreviewPoint(BaseModel):
    """A raw value and what a profile makes of it: the physical value, or why there is none."""

    raw_value: float
    physical_value: float | None
    error: str | None = None


class SensorProject(BaseModel):
    sensor_id: uuid.UUID
    project_id: uuid.UUID
    home: bool
    added_by: uuid.UUID
    added_at: datetime


class BoundSensor(BaseModel):
    """A sensor bound to a run: the run's readings come from it."""

    run_id: uuid.UUID
    bound_by: uuid.UUID
    bound_at: datetime
    sensor: Sensor


class IngestError(BaseModel):
    """A batch telemetry ingest refused (its journal, kept per sensor)."""

    id: int
    sensor_id: uuid.UUID
    at: datetime
    status: int
    code: str
    detail: str
    batch_id: str | None
    readings: int
    rejected: int
    errors: list[dict[str, Any]]
    request_id: str | None


class ProjectSettings(BaseModel):
    """A project's settings for the background jobs; None: the service's default."""

    project_id: uuid.UUID
    stale_run_after_seconds: int | None = None
    telemetry_raw_retention_days: int | None = None
    telemetry_rollup_retention_days: int | None = None
    updated_by: uuid.UUID | None = None
    updated_at: datetime | None = None
