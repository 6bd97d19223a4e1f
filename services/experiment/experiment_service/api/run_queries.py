"""The run list's filters and sort orders on params and metric summaries, read from the query
string (grammar and meaning: domain.run_queries; documented with list_runs in the spec). A part
that does not parse is 422 `validation_failed` whose error names it (`field`: the query
parameter, e.g. `metric.loss_lt`, or `sort`)."""

import math
import re
from decimal import Decimal, InvalidOperation

import orjson
from aiohttp import web

from backend_common.errors import ProblemError
from experiment_service.domain.listing import SortOrder
from experiment_service.domain.metric_batch import MAX_NAME_LENGTH
from experiment_service.domain.run_queries import (
    Compare,
    MetricCondition,
    MetricStat,
    ParamCondition,
    ParamValue,
    RunCondition,
    ValueSort,
)

PARAM, METRIC = "param.", "metric."
PREFIXES = (PARAM, METRIC)
MAX_CONDITIONS = 20
MAX_PARAM_KEY_LENGTH = 200
# A JSON number; a larger exponent than this is refused (PostgreSQL's numeric stops earlier).
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?")
_PLAIN_ORDERS = frozenset(order.value for order in SortOrder)
_STATS = frozenset(stat.value for stat in MetricStat)


def run_conditions(request: web.Request) -> tuple[RunCondition, ...]:
    """Every `param.…` and `metric.…` query parameter, each value one condition."""
    conditions = [
        _condition(part, value)
        for part in dict.fromkeys(request.query)
        if part.startswith(PREFIXES)
        for value in request.query.getall(part)
    ]
    if len(conditions) > MAX_CONDITIONS:
        raise _problem("param.", f"at most {MAX_CONDITIONS} param and metric filters")
    return tuple(conditions)


def run_sort(text: str) -> SortOrder | ValueSort:
    """`sort`: one of the plain orders, or [-]param.<key> or [-]metric.<name>[.<stat>]."""
    if text in _PLAIN_ORDERS:
        return SortOrder(text)
    descending = text.startswith("-")
    body = text.removeprefix("-")
    if body.startswith(PARAM):
        return ValueSort(_param_key("sort", body.removeprefix(PARAM)), None, descending)
    if body.startswith(METRIC):
        name, stat = _metric_name("sort", body.removeprefix(METRIC))
        return ValueSort(name, stat, descending)
    orders = ", ".join(order.value for order in SortOrder)
    raise _problem("sort", f"give one of {orders}, or [-]param.<key> or [-]metric.<name>[.<stat>]")


def _condition(part: str, text: str) -> RunCondition:
    if "\x00" in part or "\x00" in text:
        raise _problem(part, "must not contain NUL (\\u0000) characters")
    subject, op = _operator(part)
    if subject.startswith(PARAM):
        key = _param_key(part, subject.removeprefix(PARAM))
        value = _param_value(part, text)
        if isinstance(value, bool) and op not in (Compare.EQ, Compare.NE):
            raise _problem(part, "true and false compare with eq and ne only")
        return ParamCondition(key, op, value)
    name, stat = _metric_name(part, subject.removeprefix(METRIC))
    if not _NUMBER.fullmatch(text) or not math.isfinite(number := float(text)):
        raise _problem(part, f"metrics compare with a number; {text[:50]!r} is not one")
    return MetricCondition(name, stat, op, number)


def _operator(part: str) -> tuple[str, Compare]:
    for op in Compare:
        if part.endswith(f"_{op.value}"):
            return part.removesuffix(f"_{op.value}"), op
    return part, Compare.EQ


def _param_key(part: str, key: str) -> str:
    if not 1 <= len(key) <= MAX_PARAM_KEY_LENGTH:
        raise _problem(part, f"name a param key of 1 to {MAX_PARAM_KEY_LENGTH} characters")
    return key


def _metric_name(part: str, text: str) -> tuple[str, MetricStat]:
    name, _, stat = text.rpartition(".")
    if name and stat in _STATS:
        text, chosen = name, MetricStat(stat)
    else:
        chosen = MetricStat.LAST
    if not 1 <= len(text) <= MAX_NAME_LENGTH:
        raise _problem(part, f"name a metric of 1 to {MAX_NAME_LENGTH} characters")
    return text, chosen


def _param_value(part: str, text: str) -> ParamValue:
    """A number, true/false, a "quoted" JSON string, or else the text itself."""
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.fullmatch(text):
        try:
            return Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
            raise _problem(part, f"{text[:50]!r} is not a number") from None
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _problem(part, "a quoted value must be a JSON string") from None
        if isinstance(value, str):
            return value
    return text


def _problem(part: str, message: str) -> ProblemError:
    error = {"in": "query", "field": part, "message": message, "type": "run_query"}
    return ProblemError(422, "validation_failed", f"{part}: {message}", errors=[error])
