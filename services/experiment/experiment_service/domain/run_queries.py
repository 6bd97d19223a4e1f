"""Filters and sort orders of the run list on params and metric summaries, typed.

    param.<key>[_<op>]=<value>            a top-level key of the run's params
    metric.<name>[.<stat>][_<op>]=<number> a metric's summary: last (default), min, max or avg
    sort=[-]param.<key> | [-]metric.<name>[.<stat>]

`op` is eq (default), ne, gt, gte, lt or lte. A param compares by the type of the value given:
a number (JSON number syntax) compares numerically with params that are numbers, `true`/`false`
with booleans (eq and ne only), anything else as text, in code-point order, with params that
are strings (quote it, "1.0", to compare a number-like text as text). A param of another type,
or missing, matches no comparison, `ne` included. A metric compares numerically; NaN matches
none. Sorting puts runs without the param or metric last, either way; params of different JSON
types sort by type (strings, numbers, booleans, arrays, objects), metric NaN above +Infinity.
"""

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal


class Compare(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"

    @property
    def sql(self) -> str:
        return _OPERATORS[self]


_OPERATORS = {
    Compare.EQ: "=",
    Compare.NE: "<>",
    Compare.GT: ">",
    Compare.GTE: ">=",
    Compare.LT: "<",
    Compare.LTE: "<=",
}


class MetricStat(StrEnum):
    LAST = "last"
    MIN = "min"
    MAX = "max"
    AVG = "avg"


ParamValue = Decimal | bool | str


@dataclass(frozen=True)
class ParamCondition:
    key: str
    op: Compare
    value: ParamValue


@dataclass(frozen=True)
class MetricCondition:
    name: str
    stat: MetricStat
    op: Compare
    value: float


class TextCompare(StrEnum):
    EQ = "eq"
    NE = "ne"
    DISTINCT = "distinct"  # ne, and also where there is no such text
    LIKE = "like"
    ILIKE = "ilike"


@dataclass(frozen=True)
class TextCondition:
    """A text compared with `value` (a LIKE pattern for like and ilike): the `name`, or the text
    at `path` in the `params` or `metadata`. Also applies to experiments (name, metadata)."""

    column: Literal["name", "params", "metadata"]
    path: tuple[str, ...]
    op: TextCompare
    value: str


RunCondition = ParamCondition | MetricCondition | TextCondition


@dataclass(frozen=True)
class ValueSort:
    """Runs by a param's value (`stat` None) or a metric's summary."""

    key: str
    stat: MetricStat | None
    descending: bool

    @property
    def by_metric(self) -> bool:
        return self.stat is not None

    @property
    def text(self) -> str:
        """The sort as the query gives it (what a cursor remembers)."""
        sign = "-" if self.descending else ""
        if self.stat is None:
            return f"{sign}param.{self.key}"
        return f"{sign}metric.{self.key}.{self.stat}"
