"""MLflow's search grammar, read into the run list's typed filters (domain.run_queries).

    metrics.<key> (= != < <= > >=) <number>         a metric's latest value
    params.<key>  (= != LIKE ILIKE) '<text>'
    tags.<key>    (= != LIKE ILIKE) '<text>'
    attributes.status (= != IN, NOT IN) 'FINISHED' | ('FAILED', 'KILLED')
    attributes.run_name (= != LIKE ILIKE) '<text>'
    clauses joined by AND; a key with spaces or dots may be quoted: `key` or "key".
    order_by: at most one of metrics.<key>, params.<key>, attributes.start_time,
    attributes.run_name, each with ASC or DESC.

Experiments: name (and attributes.name) and tags.<key> with = != LIKE ILIKE; order by name,
creation_time. Anything else is refused with INVALID_PARAMETER_VALUE naming it.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from backend_common.statuses import RunStatus
from experiment_service.api.mlflow.errors import INVALID_PARAMETER_VALUE, mlflow_error
from experiment_service.domain import mlflow
from experiment_service.domain.listing import SortOrder
from experiment_service.domain.mlflow import DELETED, ETP_STATUS, MlflowStatus
from experiment_service.domain.run_queries import (
    Compare,
    MetricCondition,
    MetricStat,
    ParamCondition,
    RunCondition,
    TextCompare,
    TextCondition,
    ValueSort,
)

_TOKENS = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    | (?P<ident>[A-Za-z_][\w]*(?:\.(?:`[^`]+`|"[^"]+"|[\w./:\-]+))?)
    | (?P<op>!=|<=|>=|=|<|>)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_ENTITIES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_COMPARE = {
    "=": Compare.EQ,
    "!=": Compare.NE,
    ">": Compare.GT,
    ">=": Compare.GTE,
    "<": Compare.LT,
    "<=": Compare.LTE,
}
_TEXT = {
    "=": TextCompare.EQ,
    "!=": TextCompare.NE,
    "LIKE": TextCompare.LIKE,
    "ILIKE": TextCompare.ILIKE,
}
_VIEWS = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}


def refused(message: str) -> Exception:
    return mlflow_error(INVALID_PARAMETER_VALUE, message)


@dataclass(frozen=True)
class Clause:
    entity: str
    key: str
    op: str
    value: str | Decimal | tuple[str, ...]


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKENS.match(text, position)
        if match is None or match.end() == position:
            raise refused(f"Invalid filter: cannot read {text[position : position + 20]!r}.")
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        yield kind, match[kind]


def _unquoted(text: str) -> str:
    if text[:1] == "'":
        return text[1:-1].replace("''", "'")
    if text[:1] in ('"', "`"):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def clauses(text: str | None) -> list[Clause]:
    """The AND-ed comparisons of an MLflow filter string."""
    if not text or not text.strip():
        return []
    tokens = list(_tokens(text))
    found: list[Clause] = []
    index = 0

    def take() -> tuple[str, str]:
        nonlocal index
        if index >= len(tokens):
            raise refused(f"Invalid filter {text!r}: it ends too early.")
        index += 1
        return tokens[index - 1]

    while True:
        kind, ident = take()
        if kind != "ident":
            raise refused(f"Invalid filter {text!r}: expected a key, got {ident!r}.")
        entity, _, key = ident.partition(".")
        if not key:
            entity, key = "attributes", entity
        if entity.lower() not in _ENTITIES:
            raise refused(f"Invalid filter {text!r}: unknown entity {entity!r}.")
        kind, op = take()
        op = op.upper()
        if kind == "ident" and op == "NOT":
            kind, word = take()
            op = "NOT IN" if word.upper() == "IN" else "?"
        if kind not in ("op", "ident") or (kind == "ident" and op not in _IDENT_OPS):
            raise refused(f"Invalid filter {text!r}: {op!r} is not a comparison.")
        value: str | Decimal | tuple[str, ...]
        if op in ("IN", "NOT IN"):
            value = _list(take, text)
        else:
            kind, raw = take()
            if kind == "string":
                value = _unquoted(raw)
            elif kind == "number":
                value = Decimal(raw)
            else:
                raise refused(f"Invalid filter {text!r}: {raw!r} is not a value.")
        found.append(Clause(_ENTITIES[entity.lower()], _unquoted(key), op, value))
        if index == len(tokens):
            return found
        kind, word = take()
        if kind != "ident" or word.upper() != "AND":
            raise refused(f"Invalid filter {text!r}: clauses are joined by AND only.")


_IDENT_OPS = frozenset({"LIKE", "ILIKE", "IN", "NOT IN"})


def _list(take: Callable[[], tuple[str, str]], text: str) -> tuple[str, ...]:
    kind, token = take()
    if token != "(":
        raise refused(f"Invalid filter {text!r}: IN takes a list in parentheses.")
    values: list[str] = []
    while True:
        kind, token = take()
        if kind != "string":
            raise refused(f"Invalid filter {text!r}: IN takes quoted strings.")
        values.append(_unquoted(token))
        kind, token = take()
        if token == ")":
            return tuple(values)
        if token != ",":
            raise refused(f"Invalid filter {text!r}: expected ',' or ')'.")


@dataclass
class RunQuery:
    conditions: list[RunCondition] = field(default_factory=list)
    statuses: set[RunStatus] | None = None


def run_query(text: str | None, view: str | int) -> RunQuery:
    query = RunQuery()
    for clause in clauses(text):
        query.conditions.extend(_run_condition(clause, query))
    stage = _VIEWS.get(str(view), str(view))
    if stage == "ACTIVE_ONLY":
        query.conditions.append(_lifecycle(TextCompare.DISTINCT))
    elif stage == "DELETED_ONLY":
        query.conditions.append(_lifecycle(TextCompare.EQ))
    elif stage != "ALL":
        raise refused(f"Invalid view type {view!r}.")
    return query


def _lifecycle(op: TextCompare) -> TextCondition:
    return TextCondition("metadata", ("mlflow", "lifecycle_stage"), op, DELETED)


def _text_op(clause: Clause) -> TextCompare:
    if clause.op not in _TEXT or not isinstance(clause.value, str):
        raise refused(
            f"Invalid filter: {clause.entity}.{clause.key} compares with =, !=, LIKE or ILIKE"
            " and a quoted string."
        )
    return _TEXT[clause.op]


def _run_condition(clause: Clause, query: RunQuery) -> list[RunCondition]:
    if clause.entity == "metrics":
        if clause.op not in _COMPARE or not isinstance(clause.value, Decimal):
            raise refused(f"Invalid filter: metrics.{clause.key} compares with a number.")
        compare = _COMPARE[clause.op]
        return [MetricCondition(clause.key, MetricStat.LAST, compare, float(clause.value))]
    if clause.entity == "params":
        op = _text_op(clause)
        assert isinstance(clause.value, str)
        if op in (TextCompare.EQ, TextCompare.NE):
            return [ParamCondition(clause.key, _COMPARE[clause.op], clause.value)]
        return [TextCondition("params", (clause.key,), op, clause.value)]
    if clause.entity == "tags":
        op = _text_op(clause)
        assert isinstance(clause.value, str)
        if clause.key == "mlflow.runName":
            return [TextCondition("name", (), op, clause.value)]
        return [TextCondition("metadata", ("mlflow", "tags", clause.key), op, clause.value)]
    key = clause.key.lower()
    if key in ("run_name", "name"):
        op = _text_op(clause)
        assert isinstance(clause.value, str)
        return [TextCondition("name", (), op, clause.value)]
    if key == "status":
        return _status(clause, query)
    raise refused(
        f"Filtering on attributes.{clause.key} is not supported by ETP's MLflow API"
        " (status and run_name are)."
    )


def _status(clause: Clause, query: RunQuery) -> list[RunCondition]:
    values = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    try:
        named = {MlflowStatus(str(value)) for value in values}
    except ValueError:
        raise refused(f"Invalid filter: unknown status in {values!r}.") from None
    if clause.op in ("!=", "NOT IN"):
        named = set(MlflowStatus) - named
    elif clause.op not in ("=", "IN"):
        raise refused("Invalid filter: attributes.status compares with =, !=, IN or NOT IN.")
    statuses = {ETP_STATUS[status] for status in named}
    if MlflowStatus.FINISHED in named:
        statuses.add(RunStatus.ARCHIVED)
    query.statuses = statuses if query.statuses is None else query.statuses & statuses
    # FAILED and KILLED are both ETP's failed; only the metadata tells them apart.
    killed = TextCondition("metadata", ("mlflow", "status"), TextCompare.EQ, "KILLED")
    if named == {MlflowStatus.KILLED}:
        return [killed]
    if named <= {MlflowStatus.FAILED, MlflowStatus.KILLED} and MlflowStatus.KILLED not in named:
        return [TextCondition("metadata", ("mlflow", "status"), TextCompare.DISTINCT, "KILLED")]
    return []


def run_sort(order_by: list[str]) -> SortOrder | ValueSort:
    if not order_by:
        return SortOrder.CREATED_AT_DESC
    if len(order_by) > 1:
        raise refused("ETP's MLflow API orders runs by one order_by clause at most.")
    entity, key, descending = _order(order_by[0])
    if entity == "metrics":
        return ValueSort(key, MetricStat.LAST, descending)
    if entity == "params":
        return ValueSort(key, None, descending)
    if entity == "attributes" and key in ("start_time", "created", "Created"):
        return SortOrder.CREATED_AT_DESC if descending else SortOrder.CREATED_AT
    if (entity, key) in (("attributes", "run_name"), ("tags", mlflow.RUN_NAME_TAG)):
        return SortOrder.NAME_DESC if descending else SortOrder.NAME
    raise refused(f"Ordering runs by {order_by[0]!r} is not supported by ETP's MLflow API.")


def _order(text: str) -> tuple[str, str, bool]:
    match = re.fullmatch(r"\s*(\S.*?)(?:\s+(ASC|DESC))?\s*", text, re.IGNORECASE)
    if match is None:
        raise refused(f"Invalid order_by {text!r}.")
    ident, direction = match[1], (match[2] or "ASC").upper()
    entity, _, key = ident.partition(".")
    if not key:
        entity, key = "attributes", entity
    if entity.lower() not in _ENTITIES:
        raise refused(f"Invalid order_by {text!r}: unknown entity {entity!r}.")
    return _ENTITIES[entity.lower()], _unquoted(key), direction == "DESC"


def experiment_query(text: str | None, view: str | int) -> list[RunCondition]:
    conditions: list[RunCondition] = []
    for clause in clauses(text):
        op = _text_op(clause)
        assert isinstance(clause.value, str)
        if clause.entity == "tags":
            conditions.append(
                TextCondition("metadata", ("mlflow", "tags", clause.key), op, clause.value)
            )
        elif clause.entity == "attributes" and clause.key.lower() == "name":
            conditions.append(TextCondition("name", (), op, clause.value))
        else:
            raise refused(
                f"Filtering experiments on {clause.entity}.{clause.key} is not supported by"
                " ETP's MLflow API (name and tags are)."
            )
    stage = _VIEWS.get(str(view), str(view))
    if stage == "ACTIVE_ONLY":
        conditions.append(_lifecycle(TextCompare.DISTINCT))
    elif stage == "DELETED_ONLY":
        conditions.append(_lifecycle(TextCompare.EQ))
    elif stage != "ALL":
        raise refused(f"Invalid view type {view!r}.")
    return conditions


def experiment_sort(order_by: list[str]) -> SortOrder:
    if not order_by:
        return SortOrder.CREATED_AT_DESC
    if len(order_by) > 1:
        raise refused("ETP's MLflow API orders experiments by one order_by clause at most.")
    _, key, descending = _order(order_by[0])
    if key == "name":
        return SortOrder.NAME_DESC if descending else SortOrder.NAME
    if key in ("creation_time", "last_update_time", "experiment_id"):
        return SortOrder.CREATED_AT_DESC if descending else SortOrder.CREATED_AT
    raise refused(f"Ordering experiments by {order_by[0]!r} is not supported by ETP's MLflow API.")
