"""What run comparison reads (capture sessions, bound sensors, telemetry statistics and traces;
metric summaries are the metrics' own) and what it answers (the comparison table and the
overlay)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from backend_common.statuses import RunStatus

MIN_RUNS = 2
MAX_RUNS = 100
MAX_POINTS = 10_000  # buckets per trace
# Buckets of one overlay answer, all its traces together (points times capture sessions).
MAX_OVERLAY_BUCKETS = 200_000


@dataclass(frozen=True)
class CompareRequest:
    """Distinct run ids (MIN_RUNS to MAX_RUNS, the answer keeps their order), the baseline among
    them, and whether to leave out the params and metrics that are the same in every run."""

    run_ids: tuple[uuid.UUID, ...]
    baseline: uuid.UUID
    only_diff: bool = False


@dataclass(frozen=True)
class OverlayRequest:
    run_ids: tuple[uuid.UUID, ...]
    sensor_id: uuid.UUID
    signal: str
    points: int


# --- read from the database ---------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRef:
    id: uuid.UUID
    run_id: uuid.UUID
    ordinal_number: int
    started_at: datetime | None
    stopped_at: datetime | None


@dataclass(frozen=True)
class BoundSensorRef:
    run_id: uuid.UUID
    sensor_id: uuid.UUID
    name: str


@dataclass(frozen=True)
class SessionStats:
    """Physical values of one sensor's signal in one capture session."""

    capture_session_id: uuid.UUID
    sensor_id: uuid.UUID
    signal: str
    count: int
    min: float
    max: float
    avg: float
    twa: float


# --- the answers --------------------------------------------------------------------------------


class Wire(BaseModel):
    # Metric values keep NaN and infinities as logged; JSON has no such numbers, so they go out
    # as the strings "NaN", "Infinity", "-Infinity".
    model_config = ConfigDict(ser_json_inf_nan="strings")


class ComparedRun(Wire):
    id: uuid.UUID
    experiment_id: uuid.UUID
    name: str
    status: RunStatus
    tags: list[str]
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None


class ParamRow(Wire):
    """One parameter across the runs: each run's value (a run without it is left out)."""

    key: str
    differs: bool
    values: dict[uuid.UUID, Any]


class MetricDelta(Wire):
    """The run's value minus the baseline's; None where either is missing or not finite."""

    min: float | None
    max: float | None
    avg: float | None
    last: float | None


class MetricValue(Wire):
    count: int
    min: float | None
    max: float | None
    avg: float | None
    last: float
    last_step: int
    delta: MetricDelta | None


class MetricRow(Wire):
    name: str
    differs: bool
    values: dict[uuid.UUID, MetricValue]


class TelemetryRow(Wire):
    """A bound sensor's signal in one capture session of a run (signal None and count 0: the
    sensor has no physical value in that session)."""

    run_id: uuid.UUID
    capture_session_id: uuid.UUID
    ordinal_number: int
    started_at: datetime | None
    stopped_at: datetime | None
    sensor_id: uuid.UUID
    sensor_name: str
    signal: str | None
    count: int
    min: float | None
    max: float | None
    avg: float | None
    twa: float | None


class Comparison(Wire):
    baseline: uuid.UUID
    runs: list[ComparedRun]
    params: list[ParamRow]
    metrics: list[MetricRow]
    telemetry: list[TelemetryRow]


class OverlayBuckets(Wire):
    """A trace's buckets column by column (index i is one bucket), those holding readings only:
    the readings with t[i] ≤ offset from the session's start < t[i] + bucket_seconds."""

    t: list[float]
    count: list[int]
    min: list[float]
    max: list[float]
    first: list[float]
    last: list[float]


@dataclass(frozen=True)
class Trace:
    """One session's buckets, as read."""

    capture_session_id: uuid.UUID
    width_us: int
    buckets: OverlayBuckets


class OverlaySession(Wire):
    capture_session_id: uuid.UUID
    ordinal_number: int
    started_at: datetime | None
    stopped_at: datetime | None
    buckets: OverlayBuckets


class OverlayRun(Wire):
    run_id: uuid.UUID
    sessions: list[OverlaySession]


class Overlay(Wire):
    sensor_id: uuid.UUID
    signal: str
    points: int
    bucket_seconds: float | None
    runs: list[OverlayRun]
