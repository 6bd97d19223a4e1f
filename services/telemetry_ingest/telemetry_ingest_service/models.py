"""Query models of the telemetry read side (unknown parameters refused)."""

import re
import uuid
from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from backend_common.instants import Instant
from backend_common.pagination import PageQuery

Layer = Literal["raw", "physical"]
Bucket = Literal["10s", "1m", "5m", "1h", "1d"]
MAX_SENSORS = 20
MAX_SIGNALS = 32
MAX_PAGE = 10_000
READING_REPEATED = ("sensor_id", "signal")
# A channel of a multi-channel sensor, as readings name it in meta.signal.
Signal = Annotated[str, Field(min_length=1, max_length=64)]
Signals = Annotated[list[Signal], Field(max_length=MAX_SIGNALS)]


class _Selection(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sensor_id: list[uuid.UUID] = Field(default=[], max_length=MAX_SENSORS)
    signal: Signals = []
    run_id: uuid.UUID | None = None
    capture_session_id: uuid.UUID | None = None
    start: Instant | None = Field(default=None, alias="from")
    end: Instant | None = Field(default=None, alias="to")
    layer: Layer = "physical"

    @model_validator(mode="after")
    def _scoped(self) -> Self:
        if not self.sensor_id and self.run_id is None and self.capture_session_id is None:
            raise ValueError("give sensor_id, run_id or capture_session_id")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("`to` must be after `from`")
        return self


class HistoryQuery(_Selection, PageQuery):
    limit: int = Field(default=1000, ge=1, le=MAX_PAGE)


class ExportQuery(_Selection):
    format: Literal["csv", "json"] = "json"


class AggregateQuery(_Selection):
    start: Instant = Field(alias="from")
    end: Instant = Field(alias="to")
    bucket: Bucket | None = None
    points: Annotated[int, Field(ge=1, le=10_000)] | None = None

    @model_validator(mode="after")
    def _one_width(self) -> Self:
        if (self.bucket is None) == (self.points is None):
            raise ValueError("give either bucket or points")
        return self


_STEP = re.compile(r"^([1-9][0-9]{0,5})(ms|s|m|h)$")
_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours"}


def _step(value: object) -> timedelta:
    match = _STEP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("a step is a number and a unit: ms, s, m or h (e.g. 500ms, 1s, 5m)")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


class AlignedQuery(_Selection):
    step: Annotated[timedelta, BeforeValidator(_step)] = timedelta(seconds=1)
    fill: Literal["none", "previous", "linear"] = "none"

    @model_validator(mode="after")
    def _sensors(self) -> Self:
        if not self.sensor_id:
            raise ValueError("give the sensors to align (sensor_id)")
        return self


class StreamQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sensor_id: list[uuid.UUID] = Field(default=[], max_length=MAX_SENSORS)
    signal: Signals = []
    run_id: uuid.UUID | None = None
    capture_session_id: uuid.UUID | None = None
    layer: Layer = "physical"

    @model_validator(mode="after")
    def _scoped(self) -> Self:
        if not self.sensor_id and self.run_id is None and self.capture_session_id is None:
            raise ValueError("give sensor_id, run_id or capture_session_id")
        return self
