"""List filters and keyset sort orders shared by experiments and runs (and their exports)."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from backend_common.errors import ProblemError
from backend_common.pagination import encode_cursor, parse_cursor
from backend_common.sql import Query


class SortOrder(StrEnum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    NAME = "name"
    NAME_DESC = "-name"

    @property
    def column(self) -> str:
        return self.value.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")


class TagsMatch(StrEnum):
    ANY = "any"
    ALL = "all"


@dataclass(frozen=True)
class ListFilter:
    project_id: uuid.UUID | None = None
    experiment_id: uuid.UUID | None = None
    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tags_match: TagsMatch = TagsMatch.ANY
    created_after: datetime | None = None
    created_before: datetime | None = None
    git_sha: str | None = None
    q: str | None = None


class _CursorKey(BaseModel):
    sort: SortOrder
    value: Annotated[str, Field(pattern=r"^[^\x00]*$")]  # PostgreSQL text cannot hold NUL
    id: uuid.UUID


@dataclass(frozen=True)
class Page:
    sort: SortOrder
    limit: int
    after: _CursorKey | None = None

    @classmethod
    def from_request(cls, *, sort: SortOrder, limit: int, cursor: str | None) -> "Page":
        after = parse_cursor(cursor, _CursorKey) if cursor else None
        if after is not None and after.sort != sort:
            raise ProblemError(400, "invalid_cursor", "The cursor belongs to another sort order.")
        return cls(sort=sort, limit=limit, after=after)

    def cursor_after(self, row: Any) -> str:
        value = getattr(row, self.sort.column)
        return encode_cursor(
            {"sort": self.sort.value, "value": _jsonable(value), "id": str(row.id)}
        )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _parse_instant(value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value)
        if instant.tzinfo is None:
            raise ValueError("naive instant")
        return instant.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ProblemError(
            400, "invalid_cursor", "The cursor is not one this API returned."
        ) from None


def apply_filter(query: Query, flt: ListFilter, *, text_expr: str) -> None:
    """WHERE conditions for `flt`; `text_expr` is what `q` searches (matches a trigram index)."""
    if flt.project_id is not None:
        query.where(f"project_id = {query.param(flt.project_id)}")
    if flt.experiment_id is not None:
        query.where(f"experiment_id = {query.param(flt.experiment_id)}")
    if flt.statuses:
        query.where(f"status = ANY({query.param(list(flt.statuses))}::text[])")
    if flt.tags:
        operator = "&&" if flt.tags_match == TagsMatch.ANY else "@>"
        query.where(f"tags {operator} {query.param(list(flt.tags))}::text[]")
    if flt.created_after is not None:
        query.where(f"created_at >= {query.param(flt.created_after)}")
    if flt.created_before is not None:
        query.where(f"created_at < {query.param(flt.created_before)}")
    if flt.git_sha is not None:
        query.where(f"git_sha LIKE {query.param(flt.git_sha + '%')}")
    if flt.q is not None:
        pattern = "%" + flt.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query.where(f"({text_expr}) ILIKE {query.param(pattern)}")


def order_sql(sort: SortOrder) -> str:
    direction = "DESC" if sort.descending else "ASC"
    return f"{sort.column} {direction}, id {direction}"


def apply_page(query: Query, page: Page) -> str:
    """Adds the keyset condition; returns the ORDER BY ... LIMIT tail (one extra row)."""
    column = page.sort.column
    if page.after is not None:
        raw = page.after.value
        value: str | datetime = _parse_instant(raw) if column == "created_at" else raw
        comparison = "<" if page.sort.descending else ">"
        query.where(
            f"({column}, id) {comparison} ({query.param(value)}, {query.param(page.after.id)})"
        )
    return f"ORDER BY {order_sql(page.sort)} LIMIT {query.param(page.limit + 1)}"
