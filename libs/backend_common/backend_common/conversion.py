"""Conversion of raw sensor values into physical units: the payloads of conversion profiles.

Shared by the experiment service (which validates and stores profiles) and telemetry ingest
(which converts each reading with the profile valid at the reading's timestamp). Pure functions.

Kinds:
- `linear`: a·x + b
- `polynomial`: c0 + c1·x + … + cn·xⁿ, degree n ≤ 5
- `table`: calibration points (x, y), x strictly increasing; piecewise linear between them;
  outside the table either clamped to the first/last y or extrapolated along the first/last
  segment (`extrapolate`).
"""

import bisect
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

MAX_DEGREE = 5
MAX_TABLE_POINTS = 1000

Finite = Annotated[float, Field(allow_inf_nan=False)]


class ConversionError(ValueError):
    """The raw value has no finite physical value under this profile."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Linear(_Payload):
    kind: Literal["linear"] = "linear"
    a: Finite
    b: Finite = 0.0

    def convert(self, x: float) -> float:
        return _finite(self.a * x + self.b)


class Polynomial(_Payload):
    kind: Literal["polynomial"] = "polynomial"
    coefficients: Annotated[list[Finite], Field(min_length=1, max_length=MAX_DEGREE + 1)] = Field(
        description="c0, c1, …, cn: the value is the sum of ci·x^i; degree n ≤ 5"
    )

    def convert(self, x: float) -> float:
        value = 0.0
        for coefficient in reversed(self.coefficients):  # Horner's scheme
            value = value * x + coefficient
        return _finite(value)


class TablePoint(_Payload):
    x: Finite
    y: Finite


class Table(_Payload):
    kind: Literal["table"] = "table"
    points: Annotated[list[TablePoint], Field(min_length=2, max_length=MAX_TABLE_POINTS)]
    extrapolate: bool = False

    @model_validator(mode="after")
    def _strictly_increasing(self) -> "Table":
        for before, after in zip(self.points, self.points[1:], strict=False):
            if not after.x > before.x:
                raise ValueError("table points must be sorted by x, with no x twice")
        return self

    def convert(self, x: float) -> float:
        xs = [point.x for point in self.points]
        if x <= xs[0] or x >= xs[-1]:
            if not self.extrapolate:
                return self.points[0].y if x <= xs[0] else self.points[-1].y
            left = 0 if x <= xs[0] else len(xs) - 2
        else:
            left = bisect.bisect_right(xs, x) - 1
        p, q = self.points[left], self.points[left + 1]
        # Multiplied before divided: a flat segment stays flat however close its two x are.
        return _finite(p.y + (q.y - p.y) * (x - p.x) / (q.x - p.x))


ConversionPayload = Annotated[Linear | Polynomial | Table, Field(discriminator="kind")]
PAYLOAD = TypeAdapter(ConversionPayload)


def convert(payload: Linear | Polynomial | Table, raw: float) -> float:
    """The physical value of `raw`; ConversionError when it is not a finite number."""
    if not math.isfinite(raw):
        raise ConversionError("the raw value is not a finite number")
    return payload.convert(raw)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ConversionError("the physical value is out of range")
    return value
