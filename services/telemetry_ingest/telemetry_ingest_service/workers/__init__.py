"""The background loops of an ingest process, started and stopped together with it:

- the spool drain: stores spooled batches when some arrive, and retries while PostgreSQL is away;
- the heartbeat flush: writes the coalesced heartbeats every `heartbeat_interval` seconds;
- the rollup refresher: recomputes queued minutes every `rollup_interval` seconds (every
  process may run one: an advisory lock lets one work at a time);
- storage upkeep once at start (partitions and retention); afterwards it is a job;
- the job runner (JOBS_ENABLED; workers/jobs.py): work one process of all does at a time.

The rollup refresher is no job: it runs every few seconds, and each pass is recorded nowhere.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog

from backend_common.db import UNAVAILABLE
from backend_common.jobs import JobRunner
from telemetry_ingest_service.domain.ingest import Ingest
from telemetry_ingest_service.domain.rollup import Rollup
from telemetry_ingest_service.domain.storage import Storage
from telemetry_ingest_service.workers.loops import drain_spool, every

_log = structlog.get_logger(__name__)


@dataclass
class Workers:
    ingest: Ingest
    rollup: Rollup
    storage: Storage
    heartbeat_interval: float
    rollup_interval: float
    jobs: JobRunner
    jobs_enabled: bool
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def maintain_storage(self) -> None:
        """Storage upkeep once, now (at start); PostgreSQL away is left to the hourly loop."""
        try:
            await self.storage.maintain()
        except UNAVAILABLE as exc:
            _log.warning("storage_not_maintained", error=repr(exc))

    async def start(self) -> None:
        if self.jobs_enabled:
            await self.jobs.start()
        self._tasks = [
            asyncio.create_task(every(self.heartbeat_interval, self.ingest.flush_heartbeats)),
            asyncio.create_task(drain_spool(self.ingest)),
            asyncio.create_task(every(self.rollup_interval, self.rollup.refresh)),
        ]

    async def stop(self) -> None:
        """Ends the loops, then writes the last heartbeats (if PostgreSQL is there)."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.jobs.stop()
        with contextlib.suppress(*UNAVAILABLE):
            await self.ingest.flush_heartbeats()
