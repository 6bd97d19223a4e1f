"""Field types of the cursor key models: a cursor comes back from the client, so each field is
bounded to what its column can hold, and a forged one fails validation (400 invalid_cursor)
instead of failing in the driver or the database (500)."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

# A bigint (bigserial) id.
BigId = Annotated[int, Field(ge=0, le=2**63 - 1)]
# An integer column.
Int4 = Annotated[int, Field(ge=0, le=2**31 - 1)]


def _in_utc(value: datetime) -> datetime:
    """The instant in UTC; one that leaves Python's range there (year 1 at +14:00, year 9999 at
    -14:00) is refused."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("instant out of range") from None


# A timestamptz column.
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
