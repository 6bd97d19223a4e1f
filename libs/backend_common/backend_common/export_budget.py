"""What exports may take: database connections, in all and per user, time and rows.

An export holds a database connection (one repeatable-read snapshot, read through a cursor) for
as long as its client reads. So exports get a small budget of their own, below the pool's size,
so that however many slow readers there are the rest of the service keeps its connections; each
user may run a few at once; a row cap bounds one export (the answer says so in its headers); and
a time limit (`backend_common.export.stream_bounded_export`) ends one whose client reads too slowly,
which gives its connection and its slot back.
"""

import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from backend_common.errors import DomainError, ErrorMap, Problem


class TooManyExports(DomainError):
    """You have as many exports running as one user may; wait for one to finish."""


class ExportsBusy(DomainError):
    """Every export slot of the service is taken; retry shortly."""


class ExportTimedOut(DomainError):
    """The export took longer than the service allows; narrow the selection."""


EXPORT_ERRORS: ErrorMap = {
    TooManyExports: Problem(429, "too_many_exports", headers={"Retry-After": "5"}),
    ExportsBusy: Problem(503, "exports_busy", headers={"Retry-After": "5"}),
    ExportTimedOut: (503, "export_timed_out"),
}


RowT = TypeVar("RowT")
OutT = TypeVar("OutT")


@dataclass(frozen=True)
class ExportRows(Generic[RowT]):
    """An export under way: its rows (up to the row cap), whether the selection goes on past
    the cap, and the columns it shows when the export chooses them (empty: the caller names
    them)."""

    rows: AsyncGenerator[RowT, None]
    truncated: bool
    max_rows: int
    columns: tuple[str, ...] = ()

    def map(self, convert: Callable[[RowT], OutT]) -> "ExportRows[OutT]":
        """The same export with each row converted (the rows' owner still closes them)."""

        async def converted() -> AsyncGenerator[OutT, None]:
            async for row in self.rows:
                yield convert(row)

        return ExportRows(converted(), self.truncated, self.max_rows, self.columns)

    @property
    def headers(self) -> dict[str, str]:
        """What the answer says about the cap: always its value, and whether it cut the rows."""
        headers = {"Export-Row-Limit": str(self.max_rows)}
        if self.truncated:
            headers["Export-Truncated"] = "row_limit"
        return headers


@dataclass(frozen=True)
class ExportLimits:
    connections: int = 2  # exports running at once in the process, each on one connection
    per_user: int = 2
    max_rows: int = 1_000_000
    max_seconds: float = 300.0


class ExportSlots:
    """Exports running now, in all and per user; past either bound an export is refused at
    once (it would otherwise wait on a client that may never read)."""

    def __init__(self, limits: ExportLimits) -> None:
        self.limits = limits
        self._running: Counter[uuid.UUID] = Counter()

    @contextmanager
    def slot(self, user_id: uuid.UUID) -> Iterator[None]:
        """Held for the whole export; raises TooManyExports or ExportsBusy."""
        if self._running[user_id] >= self.limits.per_user:
            raise TooManyExports(f"At most {self.limits.per_user} exports per user run at once.")
        if self._running.total() >= self.limits.connections:
            raise ExportsBusy()
        self._running[user_id] += 1
        try:
            yield
        finally:
            self._running[user_id] -= 1
            if not self._running[user_id]:
                del self._running[user_id]
