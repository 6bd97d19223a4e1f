"""The two kinds of loop: a job every few seconds, and the spool drain."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from backend_common.db import UNAVAILABLE
from telemetry_ingest_service.domain.ingest import Ingest
from telemetry_ingest_service.monitoring import SPOOL_REPLAYED

_log = structlog.get_logger(__name__)


async def every(seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
    """Runs `job` every `seconds`; a failure is logged and the loop goes on."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except UNAVAILABLE as exc:
            _log.warning("periodic_job_database_unavailable", error=repr(exc))
        except Exception:
            _log.exception("periodic_job_failed")


async def drain_spool(ingest: Ingest) -> None:
    """Stores spooled batches when some arrive, and retries every few seconds while PostgreSQL
    is away (a spool left from an earlier process is drained at start)."""
    backoff = 0.5
    while True:
        try:
            stored = await ingest.drain_spool()
            SPOOL_REPLAYED.inc(stored)
            if stored:
                _log.info("spool_drained", batches=stored)
            backoff = 0.5
            await ingest.spooled.wait()
        except UNAVAILABLE:
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        except Exception:
            _log.exception("spool_drain_failed")
            await asyncio.sleep(5.0)
