"""Keyset pagination: opaque cursors carrying the sort key of the last row of a page."""

import base64
import binascii
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend_common.errors import ProblemError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

ItemT = TypeVar("ItemT")
KeyT = TypeVar("KeyT", bound=BaseModel)


class PageQuery(BaseModel):
    """Base of list query models; unknown query parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=1024)


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        value = None
    if not isinstance(value, dict):
        raise _invalid_cursor()
    return value


def _invalid_cursor() -> ProblemError:
    return ProblemError(400, "invalid_cursor", "The cursor is not one this API returned.")


def parse_cursor(cursor: str, model: type[KeyT]) -> KeyT:
    """A cursor decoded into the key model of one list; anything else is 400 invalid_cursor."""
    try:
        return model.model_validate(decode_cursor(cursor))
    except ValidationError:
        raise _invalid_cursor() from None


def page_of(rows: list[ItemT], *, limit: int, key: Any) -> tuple[list[ItemT], str | None]:
    """Cut rows fetched with `limit + 1` to a page; `key(row)` gives the cursor of the last row."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(key(rows[-1]))
