"""Instants in requests: RFC 3339 date-times with an offset, that PostgreSQL can store."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

_LATEST = datetime.max.replace(tzinfo=UTC)  # asyncpg sends this one as PostgreSQL's infinity


def _text(value: object) -> object:
    if not isinstance(value, str | datetime):
        raise ValueError("give an RFC 3339 date-time string")
    return value


def _in_utc_range(value: datetime) -> datetime:
    # Instants reach PostgreSQL in UTC; near year 1 or 9999 an offset can push them out of range.
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("instant out of range") from None
    if instant >= _LATEST:
        raise ValueError("instant out of range")
    return instant


# RFC 3339: an offset is required (asyncpg would read a naive time in the server's own zone).
Instant = Annotated[AwareDatetime, BeforeValidator(_text), AfterValidator(_in_utc_range)]
