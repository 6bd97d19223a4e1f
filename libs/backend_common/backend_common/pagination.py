"""Keyset pagination: opaque cursors carrying the sort key of the last row of a page.

One idiom for every list. The handler hands the client's `limit` and `cursor` on as a
`PageRequest`; the repository that pages decodes the cursor with its own key model (a pydantic
model beside its query: `request.after(RunKey)`), fetches `request.fetch` rows and cuts them with
`request.page(rows, key=...)`. Handlers render the `Page`; none computes `limit + 1` or builds a
key. A cursor that is not one of ours is the domain error `InvalidCursor` (400 in every service).
"""

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend_common.errors import DomainError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

ItemT = TypeVar("ItemT")
OutT = TypeVar("OutT")
KeyT = TypeVar("KeyT", bound=BaseModel)


class InvalidCursor(DomainError):
    """The cursor is not one this API returned."""


PAGINATION_ERRORS: dict[type[Exception], tuple[int, str]] = {InvalidCursor: (400, "invalid_cursor")}


class CursorKey(BaseModel):
    """Base of the key models cursors carry: immutable, and nothing but the declared fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PageQuery(BaseModel):
    """Base of list query models; unknown query parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=1024)

    @property
    def page(self) -> "PageRequest":
        return PageRequest(limit=self.limit, cursor=self.cursor)


@dataclass(frozen=True)
class Page(Generic[ItemT]):
    """One page of a list; `next_cursor` is None on the last one."""

    items: list[ItemT]
    next_cursor: str | None = None

    def map(self, render: Callable[[ItemT], OutT]) -> "Page[OutT]":
        return Page([render(item) for item in self.items], self.next_cursor)

    def as_json(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


@dataclass(frozen=True)
class PageRequest:
    """What a client asked for: at most `limit` items after the row its `cursor` points at."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @property
    def fetch(self) -> int:
        """Rows to fetch: one more than the page holds tells whether another page follows."""
        return self.limit + 1

    def after(self, key_model: type[KeyT]) -> KeyT | None:
        """The cursor's key, decoded into the key model of the list it pages (None: from the
        start); anything else raises InvalidCursor."""
        if self.cursor is None:
            return None
        try:
            return key_model.model_validate(decode_cursor(self.cursor))
        except ValidationError:
            raise InvalidCursor() from None

    def page(self, rows: list[ItemT], *, key: Callable[[ItemT], BaseModel]) -> Page[ItemT]:
        """Rows fetched with `fetch` cut to a page; `key(row)` is the last row's cursor key."""
        if len(rows) <= self.limit:
            return Page(rows)
        rows = rows[: self.limit]
        return Page(rows, encode_cursor(key(rows[-1]).model_dump(mode="json")))


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        value = None
    if not isinstance(value, dict):
        raise InvalidCursor()
    return value
