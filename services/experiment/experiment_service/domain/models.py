import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class ExperimentStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    ARCHIVED = "archived"


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
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime


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
