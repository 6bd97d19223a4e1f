"""List filters and keyset sort orders shared by experiments and runs (and their exports)."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from backend_common.pagination import InvalidCursor, encode_cursor, parse_cursor


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
    """`limit` rows in `sort` order after the row `(after_value, after_id)` of an earlier page."""

    sort: SortOrder
    limit: int
    after_value: str | datetime | None = None
    after_id: uuid.UUID | None = None

    @classmethod
    def from_request(cls, *, sort: SortOrder, limit: int, cursor: str | None) -> "Page":
        if cursor is None:
            return cls(sort=sort, limit=limit)
        after = parse_cursor(cursor, _CursorKey)
        if after.sort != sort:
            raise InvalidCursor("The cursor belongs to another sort order.")
        value = _parse_instant(after.value) if sort.column == "created_at" else after.value
        return cls(sort=sort, limit=limit, after_value=value, after_id=after.id)

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
        raise InvalidCursor() from None
