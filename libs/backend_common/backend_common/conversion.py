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
import functools
import itertools
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_DEGREE = 5
MAX_TABLE_POINTS = 1000

# Strict: a number (an integer is one), not a numeric string or a boolean.
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]


class ConversionError(ValueError):
    """The raw value has no finite physical value under this profile."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Linear(_Payload):
    a: Finite
    b: Finite = 0.0

    def convert(self, x: float) -> float:
        return _finite(self.a * x + self.b)


class Polynomial(_Payload):
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
    points: Annotated[list[TablePoint], Field(min_length=2, max_length=MAX_TABLE_POINTS)]
    extrapolate: bool = False

    @functools.cached_property
    def arrays(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The points' x and y, built once per profile (a payload never changes): a reading
        then costs a bisection, not a pass over the table. A cached property, not a private
        attribute: it is read per reading, and pydantic's private attributes are slow to read."""
        return tuple(point.x for point in self.points), tuple(point.y for point in self.points)

    @field_validator("points")
    @classmethod
    def _strictly_increasing(cls, points: list[TablePoint]) -> list[TablePoint]:
        for before, after in itertools.pairwise(points):
            if not after.x > before.x:
                raise ValueError("table points must be sorted by x, with no x twice")
        return points

    def convert(self, x: float) -> float:
        xs, ys = self.arrays
        if x <= xs[0] or x >= xs[-1]:
            if not self.extrapolate:
                return ys[0] if x <= xs[0] else ys[-1]
            left = 0 if x <= xs[0] else len(xs) - 2
        else:
            left = bisect.bisect_right(xs, x) - 1
        px, py, qx, qy = xs[left], ys[left], xs[left + 1], ys[left + 1]
        # Multiplied before divided: a flat segment stays flat however close its two x are.
        return _finite(py + (qy - py) * (x - px) / (qx - px))


Converter = Linear | Polynomial | Table
Kind = Literal["linear", "polynomial", "table"]
KINDS: dict[str, type[Converter]] = {"linear": Linear, "polynomial": Polynomial, "table": Table}


def parse(kind: str, payload: Any) -> Converter:
    """The converter of a profile's kind and payload; pydantic's ValidationError if invalid."""
    return KINDS[kind].model_validate(payload)


def convert(payload: Converter, raw: float) -> float:
    """The physical value of `raw`; ConversionError when it is not a finite number."""
    if not math.isfinite(raw):
        raise ConversionError("the raw value is not a finite number")
    return payload.convert(raw)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ConversionError("the physical value is out of range")
    return value
