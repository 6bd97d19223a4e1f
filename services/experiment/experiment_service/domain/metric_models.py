"""What run metrics are made of, as the domain hands them out."""

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Logged:
    """The answer to a logged batch."""

    run_id: uuid.UUID
    batch_id: str | None  # the client's
    accepted: int
    late: int  # points marked late (the run had finished)
    duplicate: bool  # stored before (same batch_id): nothing was stored this time


@dataclass(frozen=True)
class StoredBatch:
    points: int
    late: bool


@dataclass(frozen=True)
class MetricSummary:
    """One metric of a run, kept up to date on write. `count` counts every point, NaN and
    infinities included; min, max and avg are of the finite values (None while there are none);
    `last` is the value at the highest step (latest timestamp on a tie)."""

    name: str
    count: int
    finite_count: int
    min: float | None
    max: float | None
    avg: float | None
    last: float
    last_step: int
    last_timestamp: datetime


@dataclass(frozen=True)
class MetricPoint:
    step: int
    value: float
    timestamp: datetime
    late: bool


@dataclass(frozen=True)
class SeriesFilter:
    """Which points of a series: steps in [step_from, step_to), timestamps in [time_from,
    time_to) (a bound left None is open)."""

    step_from: int | None = None
    step_to: int | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None

    @property
    def by_time(self) -> bool:
        return self.time_from is not None or self.time_to is not None


@dataclass(frozen=True)
class Chart:
    """A series as a chart draws it: every point of the range when there are at most as many as
    asked for (`bucket_steps` None), else the first, lowest, highest and last point of each
    bucket of `bucket_steps` steps."""

    points: list[tuple[int, float]]
    bucket_steps: int | None
