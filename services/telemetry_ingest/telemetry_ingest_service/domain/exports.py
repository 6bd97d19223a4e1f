"""What exports may take: database connections, per user and in all, and rows.

An export holds a database connection (one repeatable-read snapshot) for as long as its client
reads. So exports get a small budget of their own, below the pool's size, so that however many
slow readers there are the rest of the service keeps its connections; each user may run a few
at once; a row cap bounds one export (the answer says when it was cut). The time limit is the
API's: it ends the response, which ends the export and gives the connection back.
"""

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from telemetry_ingest_service.domain.errors import ExportsBusy, TooManyExports


@dataclass(frozen=True)
class ExportLimits:
    connections: int = 2  # exports running at once in the process, each on one connection
    per_user: int = 2
    max_rows: int = 1_000_000


@dataclass(frozen=True)
class Export:
    """An export under way: the reading fields it shows, its rows, and whether they stop at the
    row cap before the selection's end."""

    fields: tuple[str, ...]
    rows: AsyncIterator[dict[str, Any]]
    truncated: bool
    max_rows: int


class ExportSlots:
    """Exports running now, in all and per user; past either bound an export is refused at
    once (it would otherwise wait on a client that may never read)."""

    def __init__(self, limits: ExportLimits) -> None:
        self._limits = limits
        self._running: Counter[uuid.UUID] = Counter()

    @contextmanager
    def slot(self, user_id: uuid.UUID) -> Iterator[None]:
        if self._running[user_id] >= self._limits.per_user:
            raise TooManyExports(f"At most {self._limits.per_user} exports per user run at once.")
        if self._running.total() >= self._limits.connections:
            raise ExportsBusy()
        self._running[user_id] += 1
        try:
            yield
        finally:
            self._running[user_id] -= 1
            if not self._running[user_id]:
                del self._running[user_id]
