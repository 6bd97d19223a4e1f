"""Storage upkeep of artifacts, beside the handlers: once at start-up the sweep (bytes that no
row references and no live upload owns: what a crash or a kill left), then every interval the
trash (objects of deleted artifacts, e.g. those that went with their run)."""

import asyncio
import contextlib

import structlog

from experiment_service.domain.artifacts.service import Artifacts

_log = structlog.get_logger(__name__)


class ArtifactUpkeep:
    def __init__(self, artifacts: Artifacts, *, interval: float, sweep_first: bool) -> None:
        self._artifacts = artifacts
        self._interval = interval
        self._sweep_first = sweep_first
        self._task: asyncio.Task[None] | None = None
        self.swept = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        if self._sweep_first:
            try:
                report = await self._artifacts.sweep()
                _log.info(
                    "artifact_sweep_done",
                    pending_removed=report.pending_removed,
                    orphans_removed=report.orphans_removed,
                    objects_seen=report.objects_seen,
                )
            except Exception:
                _log.exception("artifact_sweep_failed")
        self.swept.set()
        while True:
            try:
                while await self._artifacts.empty_trash():
                    pass
            except Exception:
                _log.exception("artifact_trash_failed")
            await asyncio.sleep(self._interval)
