import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from backend_common.app import create_base_app
from backend_common.batches import Limits
from backend_common.clock import Clock, utc_now
from backend_common.db import UNAVAILABLE
from backend_common.export_budget import ExportLimits
from backend_common.keys import DATABASE
from backend_common.live import Hub
from backend_common.metrics import add_sampler
from backend_common.notifications import Listener
from backend_common.ratelimit import TokenBuckets
from telemetry_ingest_service import monitoring
from telemetry_ingest_service.api import live, telemetry
from telemetry_ingest_service.api import readings as readings_api
from telemetry_ingest_service.api.errors import ERRORS
from telemetry_ingest_service.appkeys import (
    CREDENTIALS,
    HUB,
    INGEST,
    JOB_RUNNER,
    READINGS,
    SENSOR_RATES,
)
from telemetry_ingest_service.domain import credentials
from telemetry_ingest_service.domain.credentials import Credentials, stored_digests
from telemetry_ingest_service.domain.heartbeats import Heartbeats
from telemetry_ingest_service.domain.ingest import Ingest
from telemetry_ingest_service.domain.readings import Readings
from telemetry_ingest_service.domain.rollup import Rollup
from telemetry_ingest_service.domain.spool import Spool
from telemetry_ingest_service.repositories.readings import ReadingRepository
from telemetry_ingest_service.repositories.telemetry import NOTIFY_CHANNEL
from telemetry_ingest_service.settings import TelemetryIngestSettings
from telemetry_ingest_service.workers import Workers
from telemetry_ingest_service.workers.jobs import job_runner, storage


def create_app(settings: TelemetryIngestSettings, *, clock: Clock = utc_now) -> web.Application:
    app = create_base_app(settings, error_map=ERRORS, public_routes=("ingest_telemetry",))
    app[SENSOR_RATES] = TokenBuckets(
        rate=settings.sensor_rate, burst=settings.sensor_burst, name="ingest_sensor_token"
    )

    async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
        db = app[DATABASE]
        app[CREDENTIALS] = Credentials(
            stored_digests(db, timeout=settings.db_timeout),
            ttl=settings.token_cache_ttl,
            unavailable=UNAVAILABLE,
            clock=clock,
        )
        # One folder per worker process; a worker drains the folders of workers that are gone.
        spool = Spool(
            settings.spool_dir / f"worker-{settings.worker}", max_bytes=settings.spool_max_bytes
        )
        spool.open()
        app[READINGS] = Readings(
            db,
            rollup_reads=settings.rollup_reads,
            max_aligned_readings=settings.aligned_max_readings,
            export_limits=ExportLimits(
                connections=settings.export_connections,
                per_user=settings.exports_per_user,
                max_rows=settings.export_max_rows,
                max_seconds=settings.export_max_seconds,
            ),
        )
        app[INGEST] = Ingest(
            db,
            clock=clock,
            limits=Limits(
                max_items=settings.max_batch_readings,
                max_future=timedelta(seconds=settings.max_future_seconds),
            ),
            heartbeats=Heartbeats(),
            journal_size=settings.journal_size,
            spool=spool,
            db_timeout=settings.db_timeout,
        )
        app[HUB] = hub = Hub.of(db, ReadingRepository, settings, name="telemetry")
        rollup = Rollup(db, clock=clock, grace=timedelta(seconds=settings.rollup_grace_seconds))
        add_sampler(app, monitoring.spool_sampler(spool))
        add_sampler(app, monitoring.rollup_sampler(rollup))
        workers = Workers(
            ingest=app[INGEST],
            rollup=rollup,
            storage=storage(db, settings),
            heartbeat_interval=settings.heartbeat_interval,
            rollup_interval=settings.rollup_interval,
            jobs=job_runner(db, settings, clock=clock),
            jobs_enabled=settings.jobs_enabled,
        )
        app[JOB_RUNNER] = workers.jobs

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
        await workers.maintain_storage()
        await listener.start()
        await workers.start()
        yield
        await workers.stop()
        await hub.stop()
        await listener.stop()
        spool.close()

    app.cleanup_ctx.append(ingest_ctx)
    app.router.add_routes(telemetry.routes)
    app.router.add_routes(readings_api.routes)
    app.router.add_routes(live.routes)
    app.on_shutdown.append(_end_streams)
    return app


async def _end_streams(app: web.Application) -> None:
    """On shutdown, before waiting for handlers: live streams end instead of holding it up."""
    if HUB in app:
        await app[HUB].stop()
