"""Batches of points a client sends at once: telemetry readings, run metrics.

Both are the hottest write paths of ETP, so nothing here makes an object per point:
- a batch is checked all or nothing, in one plain loop of the caller's, into parallel lists;
  `BatchErrors` collects every problem by item and field (the first MAX_ERRORS_LISTED of them
  are listed in the answer);
- its points are stored with one COPY of those lists, zipped lazily into rows (`copy_columns`);
- its batch row is inserted at most once per client batch id (`insert_batch_sql`: a unique
  constraint decides), and the same statement sends a NOTIFY pointing at the new batch, which
  PostgreSQL delivers when the transaction commits (what live streams listen for).
"""

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from backend_common.errors import DomainError

MAX_ERRORS_LISTED = 100
MAX_BATCH_ID_LENGTH = 200
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    """At most `max_items` items a batch, none with a timestamp more than `max_future` ahead of
    the time the batch was received."""

    max_items: int
    max_future: timedelta


class BatchInvalid(DomainError):
    """Invalid body."""

    def __init__(
        self, errors: list[dict[str, Any]], *, rejected: int, items: int, noun: str
    ) -> None:
        """`errors` name each bad field; `rejected` counts the bad items of the `items`."""
        super().__init__(
            f"Nothing was stored: {rejected} of {items} {noun} are invalid." if rejected else None
        )
        self.errors = errors
        self.rejected = rejected
        self.items = items


class BatchErrors:
    """The problems of one batch of `noun` (e.g. "readings", one "reading"): the first
    MAX_ERRORS_LISTED for the answer (as problem+json `errors` items), and which of its items had
    any."""

    def __init__(self, noun: str, one: str) -> None:
        self.noun = noun
        self.one = one
        self.listed: list[dict[str, str]] = []
        self.bad_items: set[int] = set()

    def invalid(self, items: int) -> BatchInvalid:
        """The refusal of the batch of `items` items with the problems found."""
        return BatchInvalid(self.listed, rejected=len(self.bad_items), items=items, noun=self.noun)

    def check(self, items: int) -> None:
        """Raises BatchInvalid when any problem was found in the batch of `items` items."""
        if self.listed:
            raise self.invalid(items)

    def add(self, field: str, message: str, kind: str, *, item: int | None = None) -> None:
        if item is not None:
            self.bad_items.add(item)
        if len(self.listed) < MAX_ERRORS_LISTED:
            self.listed.append({"in": "body", "field": field, "message": message, "type": kind})

    def unknown(self, names: Iterable[str], prefix: str = "", *, item: int | None = None) -> bool:
        """Adds each of `names` (of an object at `prefix`) as an unknown field; whether any."""
        found = False
        for name in names:
            self.add(f"{prefix}{name}", "unknown field", "extra_forbidden", item=item)
            found = True
        return found


def envelope(document: object, fields: frozenset[str], errors: BatchErrors) -> dict[str, Any]:
    """The body, which must be a JSON object (else BatchInvalid at once); a field not among
    `fields` is added to `errors`."""
    if not isinstance(document, dict):
        errors.add("", "the body must be a JSON object", "model_type")
        raise errors.invalid(0)
    errors.unknown(document.keys() - fields)
    return document


def items(value: object, field: str, errors: BatchErrors, *, most: int) -> list[Any]:
    """The batch's items: a list of 1 to `most` of them; else what can be checked of it (the
    problem added to `errors`)."""
    if not isinstance(value, list):
        errors.add(field, f"must be a list of {errors.noun}", "list_type")
        return []
    if not value:
        errors.add(field, f"must hold at least one {errors.one}", "too_short")
    elif len(value) > most:
        errors.add(field, f"must hold at most {most} {errors.noun}", "too_long")
        return []
    return value


def client_batch_id(value: object, errors: BatchErrors) -> str | None:
    """The client's `batch_id` (None when not given); a bad one is added to `errors`."""
    if value is None:
        return None
    if isinstance(value, str) and 1 <= len(value) <= MAX_BATCH_ID_LENGTH:
        if "\x00" not in value:
            return value
        errors.add("batch_id", "must not contain NUL (\\u0000) characters", "string_nul")
        return None
    errors.add(
        "batch_id", f"must be a string of 1 to {MAX_BATCH_ID_LENGTH} characters", "string_type"
    )
    return None


def instant(
    value: object, field: str, errors: BatchErrors, *, item: int, latest: datetime
) -> datetime | None:
    """An RFC 3339 date-time with an offset, from 1970 up to `latest`; else None, and the problem
    added to `errors`."""
    if type(value) is not str:
        errors.add(field, "must be an RFC 3339 date-time string", "datetime_type", item=item)
        return None
    try:
        timestamp = datetime.fromisoformat(value)
    except ValueError:
        errors.add(field, "must be an RFC 3339 date-time", "datetime_parsing", item=item)
        return None
    if timestamp.tzinfo is None:
        errors.add(field, "must carry a UTC offset (e.g. Z)", "timezone_aware", item=item)
        return None
    if timestamp > latest:
        errors.add(field, "is too far in the future", "datetime_future", item=item)
        return None
    if timestamp < EARLIEST:
        errors.add(field, "must not be before 1970", "datetime_past", item=item)
        return None
    return timestamp


class Same:
    """A column that holds one value in every row."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


Column = Iterable[Any] | Same


def rows(*columns: Column) -> Iterator[tuple[Any, ...]]:
    """Rows of parallel columns, built lazily by zip (no Python loop per row); they end with the
    shortest column that is not a Same."""
    repeated = (itertools.repeat(c.value) if isinstance(c, Same) else c for c in columns)
    return zip(*repeated, strict=False)


async def copy_columns(conn: asyncpg.Connection, table: str, columns: Mapping[str, Column]) -> None:
    """One COPY of `columns` (name → values) into `table`."""
    await conn.copy_records_to_table(table, records=rows(*columns.values()), columns=list(columns))


def insert_batch_sql(table: str, columns: Sequence[str], *, pointer: Mapping[str, str]) -> str:
    """An INSERT of one batch row ($1… in `columns` order) that does nothing when a unique
    constraint says the batch is stored already, and otherwise returns its `id` and sends a
    NOTIFY on the channel given as the last parameter, with `{"batch": id, **pointer}` as JSON
    (`pointer` maps each key to an SQL expression over the parameters, e.g. `$1::text`)."""
    values = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    fields = "".join(f", '{key}', {expression}" for key, expression in pointer.items())
    return f"""
        WITH batch AS (
            INSERT INTO {table} ({", ".join(columns)})
            VALUES ({values})
            ON CONFLICT DO NOTHING
            RETURNING id
        )
        SELECT id, pg_notify(${len(columns) + 1}, json_build_object('batch', id{fields})::text)
        FROM batch
    """
