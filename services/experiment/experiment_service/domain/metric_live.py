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

from backend_common.live import ACCESS_REVOKED, StreamEnded
from experiment_service.domain.errors import RunNotFound


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
