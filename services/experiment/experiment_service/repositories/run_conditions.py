"""SQL of the run list's filters and sort orders on params and metric summaries
(domain.run_queries), and the key a value sort's cursor carries.

A param compares through a CASE on its JSON type, so a param of another type is NULL (matches
nothing) and a number is compared as numeric, exactly. A metric condition is an EXISTS on its
summary row (primary key lookup). A value sort reads runs with their sort value beside them
(`sort_value`) and pages on (sort_value IS NULL, sort_value, id): runs without it come last."""

import math
import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field

from backend_common.pagination import CursorKey, InvalidCursor, PageRequest
from backend_common.sql import Query
from experiment_service.domain.run_queries import (
    MetricCondition,
    MetricStat,
    RunCondition,
    TextCompare,
    TextCondition,
    ValueSort,
)

_STATS = {
    MetricStat.LAST: "m.last",
    MetricStat.MIN: "m.min",
    MetricStat.MAX: "m.max",
    MetricStat.AVG: "CASE WHEN m.finite_count > 0 THEN m.sum / m.finite_count END",
}
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class ValueSortKey(CursorKey):
    """The sort a page was read in, and the sort value (None: the run had none; a metric's
    NaN and infinities as strings) and id of its last run."""

    sort: Annotated[str, Field(max_length=600)]
    value: Any
    id: uuid.UUID


_TEXT_OPERATORS = {
    TextCompare.EQ: "=",
    TextCompare.NE: "<>",
    TextCompare.DISTINCT: "IS DISTINCT FROM",
    TextCompare.LIKE: "LIKE",
    TextCompare.ILIKE: "ILIKE",
}


def condition_sql(query: Query, condition: RunCondition) -> str:
    if isinstance(condition, TextCondition):
        text = (
            f"({condition.column} #>> {query.param(list(condition.path))}::text[])"
            if condition.column != "name"
            else "name"
        )
        operator = _TEXT_OPERATORS[condition.op]
        return f'{text} COLLATE "C" {operator} {query.param(condition.value)}::text'
    if isinstance(condition, MetricCondition):
        stat = _STATS[condition.stat]
        return (
            "EXISTS (SELECT 1 FROM run_metric_summaries m WHERE m.run_id = runs.id"
            f" AND m.name = {query.param(condition.name)}::text"
            f" AND {stat} {condition.op.sql} {query.param(condition.value)}::float8"
            f" AND {stat} <> 'NaN'::float8)"
        )
    key = f"{query.param(condition.key)}::text"
    value = query.param(condition.value)
    if isinstance(condition.value, bool):
        typed, value = _typed(key, "boolean", f"(params -> {key})::boolean"), f"{value}::boolean"
    elif isinstance(condition.value, Decimal):
        typed, value = _typed(key, "number", f"(params -> {key})::numeric"), f"{value}::numeric"
    else:
        typed, value = _typed(key, "string", f"params ->> {key}") + ' COLLATE "C"', f"{value}::text"
    return f"{typed} {condition.op.sql} {value}"


def _typed(key: str, json_type: str, expression: str) -> str:
    return f"(CASE WHEN jsonb_typeof(params -> {key}) = '{json_type}' THEN {expression} END)"


def value_select(columns: str, sort: ValueSort, query: Query) -> str:
    """A SELECT of `columns` of runs (as `runs`) with the sort value as `sort_value`."""
    key = f"{query.param(sort.key)}::text"
    if sort.stat is None:
        value = f"r.params -> {key}"
    else:
        value = (
            f"(SELECT {_STATS[sort.stat]} FROM run_metric_summaries m"
            f" WHERE m.run_id = r.id AND m.name = {key})"
        )
    return (
        f"SELECT {columns}, sort_value FROM"
        f" (SELECT {columns}, {value} AS sort_value FROM runs r) runs"
    )


def value_order(sort: ValueSort) -> str:
    direction = "DESC" if sort.descending else "ASC"
    return f"sort_value IS NULL, sort_value {direction}, id {direction}"


def value_after(query: Query, sort: ValueSort, page: PageRequest) -> str | None:
    """The condition of the rows after the page's cursor (None: from the start)."""
    key = page.after(ValueSortKey)
    if key is None:
        return None
    if key.sort != sort.text:
        raise InvalidCursor("The cursor belongs to another sort order.")
    comparison = "<" if sort.descending else ">"
    run_id = query.param(key.id)
    if key.value is None:
        return f"(sort_value IS NULL AND id {comparison} {run_id})"
    value = query.param(_from_cursor(sort, key.value))
    value += "::jsonb" if sort.stat is None else "::float8"
    return (
        f"(sort_value IS NULL OR sort_value {comparison} {value}"
        f" OR (sort_value = {value} AND id {comparison} {run_id}))"
    )


def cursor_value(sort: ValueSort, value: Any) -> Any:
    """A run's sort value as its cursor carries it."""
    if sort.stat is None or value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _from_cursor(sort: ValueSort, value: Any) -> Any:
    if sort.stat is not None:
        if type(value) in (int, float):
            return float(value)
        if isinstance(value, str) and value in _NON_FINITE:
            return _NON_FINITE[value]
        raise InvalidCursor()
    if not _storable(value):
        raise InvalidCursor()
    return value


def _storable(value: Any) -> bool:
    """Whether jsonb can hold the value (no NUL in any string)."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True
