"""Live run metrics: the experiment service's side of the shared live streams
(backend_common.live).

Each stored batch sends `NOTIFY run_metrics` with a pointer (batch id, run); a stream wants the
batches of one run. An open stream's access is re-checked as it runs, and ends when its caller
is no longer a member of the run's project.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend_common.db import Database
from backend_common.live import ACCESS_REVOKED, StreamEnded
from experiment_service.domain.errors import RunNotFound
from experiment_service.repositories.metric_series import SeriesRepository


@dataclass(frozen=True)
class RunFilter:
    """The batches of one run."""

    run_id: uuid.UUID

    def wants(self, pointer: dict[str, Any]) -> bool:
        return bool(pointer.get("run") == str(self.run_id))


def access_check(readable: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """A stream's re-check: nothing while its caller may read the run, else StreamEnded."""

    async def check() -> None:
        try:
            await readable()
        except RunNotFound:
            raise StreamEnded(ACCESS_REVOKED) from None

    return check


class StoredMetricBatches:
    """What the hub reads of stored batches: those a stream missed, a batch's points, the
    latest batch id."""

    def __init__(self, db: Database, *, replay_limit: int) -> None:
        self._db = db
        self._replay_limit = replay_limit

    async def missed(self, flt: RunFilter, after: int) -> list[int]:
        """The newest `replay_limit` batches of the run after `after`, oldest first."""
        async with self._db.connection() as conn:
            return await SeriesRepository(conn).batches_after(
                flt.run_id, after, limit=self._replay_limit
            )

    async def points(self, batch_id: int) -> list[dict[str, Any]]:
        async with self._db.connection() as conn:
            return await SeriesRepository(conn).batch_points(batch_id)

    async def latest(self) -> int:
        async with self._db.connection() as conn:
            return await SeriesRepository(conn).latest_batch()
