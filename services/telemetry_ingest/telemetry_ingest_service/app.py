import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from aiohttp import web

from backend_common.app import create_base_app
from backend_common.clock import Clock, utc_now
from backend_common.db import UNAVAILABLE, Database, within
from backend_common.keys import DATABASE
from backend_common.notifications import Listener
from backend_common.ratelimit import TokenBuckets
from telemetry_ingest_service.api import live, telemetry
from telemetry_ingest_service.api import readings as readings_api
from telemetry_ingest_service.api.errors import ERRORS
from telemetry_ingest_service.appkeys import CREDENTIALS, HUB, INGEST, READINGS, SENSOR_RATES
from telemetry_ingest_service.domain import credentials
from telemetry_ingest_service.domain.batch import Limits
from telemetry_ingest_service.domain.credentials import Credentials, Digests
from telemetry_ingest_service.domain.heartbeats import Heartbeats
from telemetry_ingest_service.domain.ingest import Ingest
from telemetry_ingest_service.domain.live import Filter, Hub
from telemetry_ingest_service.domain.readings import Readings
from telemetry_ingest_service.domain.rollup import Rollup
from telemetry_ingest_service.domain.spool import Spool
from telemetry_ingest_service.repositories.readings import ReadingRepository
from telemetry_ingest_service.repositories.telemetry import NOTIFY_CHANNEL, TelemetryRepository
from telemetry_ingest_service.settings import TelemetryIngestSettings

_log = structlog.get_logger(__name__)

# Monthly telemetry partitions are kept this far ahead (on plain PostgreSQL).
PARTITION_MONTHS_AHEAD = 4


def create_app(settings: TelemetryIngestSettings, *, clock: Clock = utc_now) -> web.Application:
    app = create_base_app(settings, error_map=ERRORS, public_routes=("ingest_telemetry",))
    app[SENSOR_RATES] = TokenBuckets(rate=settings.sensor_rate, burst=settings.sensor_burst)

    async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
        db = app[DATABASE]

        async def load_digests(sensor_id: uuid.UUID) -> Digests:
            async def load() -> Digests:
                async with db.connection() as conn:
                    return await TelemetryRepository(conn).token_digests(sensor_id)

            return await within(settings.db_timeout, load())

        app[CREDENTIALS] = Credentials(
            load_digests, ttl=settings.token_cache_ttl, unavailable=UNAVAILABLE, clock=clock
        )
        # One folder per worker process; a worker drains the folders of workers that are gone.
        spool = Spool(
            settings.spool_dir / f"worker-{settings.worker}", max_bytes=settings.spool_max_bytes
        )
        spool.open()
        app[READINGS] = Readings(db, rollup_reads=settings.rollup_reads)
        rollup = Rollup(db, clock=clock, grace=timedelta(seconds=settings.rollup_grace_seconds))
        app[INGEST] = Ingest(
            db,
            clock=clock,
            limits=Limits(
                max_readings=settings.max_batch_readings,
                max_future=timedelta(seconds=settings.max_future_seconds),
            ),
            heartbeats=Heartbeats(),
            journal_size=settings.journal_size,
            spool=spool,
            db_timeout=settings.db_timeout,
        )
        app[HUB] = hub = _hub(db, settings)

        def reconnected() -> None:
            app[CREDENTIALS].forget()
            hub.reconnected()

        listener = Listener(
            settings.database_url.get_secret_value(),
            {
                credentials.CHANNEL: lambda payload: app[CREDENTIALS].forget(uuid.UUID(payload)),
                NOTIFY_CHANNEL: hub.notified,
            },
            on_reconnect=reconnected,
        )
        hub.start()
        retention = timedelta(days=settings.retention_days) if settings.retention_days else None
        try:
            await _maintain_storage(db, retention)
        except UNAVAILABLE as exc:
            _log.warning("storage_not_maintained", error=repr(exc))  # the hourly job retries
        await listener.start()
        tasks = [
            asyncio.create_task(_every(3600, lambda: _maintain_storage(db, retention))),
            asyncio.create_task(_every(settings.heartbeat_interval, app[INGEST].flush_heartbeats)),
            asyncio.create_task(_drain_spool(app[INGEST])),
            asyncio.create_task(_every(settings.rollup_interval, rollup.refresh)),
        ]
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(*UNAVAILABLE):
            await app[INGEST].flush_heartbeats()
        await hub.stop()
        await listener.stop()
        spool.close()

    app.cleanup_ctx.append(ingest_ctx)
    app.router.add_routes(telemetry.routes)
    app.router.add_routes(readings_api.routes)
    app.router.add_routes(live.routes)
    app.on_shutdown.append(_end_streams)
    return app


def _hub(db: Database, settings: TelemetryIngestSettings) -> Hub:
    async def missed(flt: Filter, after: int) -> list[int]:
        async with db.connection() as conn:
            return await ReadingRepository(conn).batches_after(
                after,
                sensor_ids=flt.sensor_ids,
                run_id=flt.run_id,
                capture_session_id=flt.capture_session_id,
                limit=settings.stream_replay_batches,
            )

    async def readings(batch_id: int) -> list[dict[str, Any]]:
        async with db.connection() as conn:
            return await ReadingRepository(conn).batch_readings(batch_id)

    async def latest() -> int:
        async with db.connection() as conn:
            return await ReadingRepository(conn).latest_batch()

    return Hub(
        missed=missed,
        readings=readings,
        latest=latest,
        queue_size=settings.stream_queue_size,
        streams_per_user=settings.streams_per_user,
        keepalive=settings.stream_keepalive_seconds,
    )


async def _end_streams(app: web.Application) -> None:
    """On shutdown, before waiting for handlers: live streams end instead of holding it up."""
    if HUB in app:
        await app[HUB].stop()


async def _maintain_storage(db: Database, retention: timedelta | None) -> None:
    """Partitions for the coming months, and the retention setting applied."""
    async with db.connection() as conn:
        telemetry = TelemetryRepository(conn)
        await telemetry.ensure_partitions(PARTITION_MONTHS_AHEAD)
        await telemetry.apply_retention(retention)


async def _every(seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except UNAVAILABLE as exc:
            _log.warning("periodic_job_database_unavailable", error=repr(exc))
        except Exception:
            _log.exception("periodic_job_failed")


async def _drain_spool(ingest: Ingest) -> None:
    """Stores spooled batches when some arrive, and retries every few seconds while PostgreSQL
    is away (a spool left from an earlier process is drained at start)."""
    backoff = 0.5
    while True:
        try:
            stored = await ingest.drain_spool()
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
