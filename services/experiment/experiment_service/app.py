from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from aiohttp import web

from backend_common.app import create_base_app
from backend_common.clock import Clock, utc_now
from backend_common.export_budget import ExportLimits, ExportSlots
from backend_common.jobs import JobRunner
from backend_common.keys import DATABASE
from backend_common.live import Hub
from backend_common.metrics import add_sampler
from backend_common.notifications import Listener
from backend_common.ratelimit import TokenBuckets
from backend_common.rbac import RoleSource
from experiment_service.api import (
    artifacts,
    audit,
    capture_sessions,
    comparison,
    conversion_profiles,
    experiments,
    jobs,
    metrics,
    project_deletions,
    project_settings,
    run_sensors,
    runs,
    sensors,
    webhooks,
)
from experiment_service.api import mlflow as mlflow_door
from experiment_service.api.errors import ERROR_MAP
from experiment_service.appkeys import (
    ARTIFACTS,
    AUDIT_LOG,
    BACKFILLS,
    CAPTURE_SESSIONS,
    COMPARISONS,
    CONVERSION_PROFILES,
    EXPERIMENTS,
    EXPORTS,
    JOBS,
    METRIC_HUB,
    PROJECT_DELETIONS,
    PROJECT_SETTINGS,
    RUN_METRICS,
    RUN_SENSORS,
    RUNS,
    SENSORS,
    WEBHOOKS,
)
from experiment_service.domain.artifacts.service import Artifacts
from experiment_service.domain.audit_log import AuditLog
from experiment_service.domain.backfills import Backfills
from experiment_service.domain.capture_sessions import CaptureSessions
from experiment_service.domain.comparison import Comparisons
from experiment_service.domain.conversion_profiles import ConversionProfiles
from experiment_service.domain.experiments import Experiments
from experiment_service.domain.jobs import Jobs
from experiment_service.domain.metrics import RunMetrics
from experiment_service.domain.project_deletions import ProjectDeletions
from experiment_service.domain.project_settings import ProjectSettingsService
from experiment_service.domain.run_sensors import RunSensors
from experiment_service.domain.runs import Runs
from experiment_service.domain.sensors import Liveness, Sensors
from experiment_service.domain.webhooks.subscriptions import Webhooks
from experiment_service.domain.webhooks.targets import TargetGuard
from experiment_service.monitoring import outbox_sampler
from experiment_service.repositories.metric_series import SeriesRepository
from experiment_service.repositories.metrics import NOTIFY_CHANNEL
from experiment_service.settings import ExperimentSettings
from experiment_service.storage import open_store
from experiment_service.workers.artifact_upkeep import ArtifactUpkeep
from experiment_service.workers.dispatcher import Dispatcher
from experiment_service.workers.jobs import job_runner

DISPATCHER = web.AppKey("webhook_dispatcher", Dispatcher)
ARTIFACT_UPKEEP = web.AppKey("artifact_upkeep", ArtifactUpkeep)
JOB_RUNNER = web.AppKey("job_runner", JobRunner)


def create_app(
    settings: ExperimentSettings, *, roles: RoleSource | None = None, clock: Clock = utc_now
) -> web.Application:
    app = create_base_app(
        settings,
        error_map=ERROR_MAP,
        roles=roles,
        outer_middlewares=(mlflow_door.mlflow_errors,),
        public_routes=project_deletions.SERVICE_ROUTES,
    )
    liveness = Liveness(
        online_within=timedelta(seconds=settings.sensor_online_seconds),
        offline_after=timedelta(seconds=settings.sensor_offline_seconds),
    )

    # One budget for the exports of experiments and runs together.
    app[EXPORTS] = ExportSlots(
        ExportLimits(
            connections=settings.export_connections,
            per_user=settings.exports_per_user,
            max_rows=settings.export_max_rows,
            max_seconds=settings.export_max_seconds,
        )
    )

    async def domain_ctx(app: web.Application) -> AsyncIterator[None]:
        db = app[DATABASE]
        add_sampler(app, outbox_sampler(db, clock))
        app[EXPERIMENTS] = Experiments(
            db, app[EXPORTS], max_fan_out=settings.webhook_max_deliveries_per_change
        )
        app[RUNS] = Runs(
            db,
            app[EXPORTS],
            max_runs=settings.max_runs_per_experiment,
            max_fan_out=settings.webhook_max_deliveries_per_change,
        )
        app[CAPTURE_SESSIONS] = CaptureSessions(db)
        app[COMPARISONS] = Comparisons(db, max_overlay_buckets=settings.compare_max_overlay_buckets)
        app[AUDIT_LOG] = AuditLog(db)
        app[PROJECT_SETTINGS] = ProjectSettingsService(db)
        app[PROJECT_DELETIONS] = ProjectDeletions(
            db,
            clock,
            chunk=settings.project_deletion_chunk,
            pause=settings.project_deletion_pause,
            wake=lambda: app[JOB_RUNNER].wake() if JOB_RUNNER in app else None,
        )
        app[SENSORS] = Sensors(db, clock, liveness, max_sensors=settings.max_sensors_per_project)
        app[CONVERSION_PROFILES] = ConversionProfiles(db, clock)
        app[BACKFILLS] = Backfills(db, clock)
        app[RUN_SENSORS] = RunSensors(db, app[SENSORS])
        app[WEBHOOKS] = Webhooks(
            db,
            clock,
            TargetGuard(settings.webhook_allowed_hosts),
            max_subscriptions=settings.webhook_max_subscriptions,
            pings=TokenBuckets(
                rate=settings.webhook_ping_rate,
                burst=settings.webhook_ping_burst,
                name="webhook_ping",
            ),
        )
        yield

    async def dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
        if not settings.webhook_dispatcher_enabled:
            yield
            return
        dispatcher = Dispatcher(app[DATABASE], settings, clock=clock)
        await dispatcher.start()
        app[DISPATCHER] = dispatcher
        yield
        await dispatcher.stop()

    async def artifacts_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_store(settings) as store:
            app[ARTIFACTS] = Artifacts(
                app[DATABASE],
                store,
                max_bytes=settings.artifact_max_bytes,
                project_quota=settings.artifact_project_quota_bytes,
            )
            # One sweep per folder or bucket is enough: the first worker's.
            upkeep = ArtifactUpkeep(
                app[ARTIFACTS],
                interval=settings.artifact_trash_interval,
                sweep_first=settings.artifact_sweep_on_start and settings.worker == 0,
            )
            await upkeep.start()
            app[ARTIFACT_UPKEEP] = upkeep
            yield
            await upkeep.stop()

    app.cleanup_ctx.append(domain_ctx)
    app.cleanup_ctx.append(artifacts_ctx)
    app.cleanup_ctx.append(_metrics_ctx(settings, clock))
    app.cleanup_ctx.append(dispatcher_ctx)
    app.cleanup_ctx.append(_jobs_ctx(settings, clock))
    for module in (
        artifacts,
        experiments,
        runs,
        comparison,
        capture_sessions,
        sensors,
        conversion_profiles,
        run_sensors,
        audit,
        webhooks,
        jobs,
        metrics,
        project_settings,
        project_deletions,
    ):
        app.router.add_routes(module.routes)
    app.router.add_routes(mlflow_door.routes)
    app.on_shutdown.append(_end_streams)
    return app


def _metrics_ctx(
    settings: ExperimentSettings, clock: Clock
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Run metrics, and the hub of their live streams (stream_* settings) fed by one LISTEN
    connection."""

    async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
        db = app[DATABASE]
        app[RUN_METRICS] = RunMetrics(
            db,
            clock=clock,
            max_points=settings.metrics_max_points,
            max_future=timedelta(seconds=settings.metrics_max_future_seconds),
            max_scanned=settings.metrics_chart_max_scanned,
        )
        app[METRIC_HUB] = hub = Hub.of(db, SeriesRepository, settings, name="run_metrics")
        listener = Listener(
            settings.database_url.get_secret_value(),
            {NOTIFY_CHANNEL: hub.notified},
            on_reconnect=hub.reconnected,
        )
        hub.start()
        await listener.start()
        yield
        await hub.stop()
        await listener.stop()

    return metrics_ctx


def _jobs_ctx(
    settings: ExperimentSettings, clock: Clock
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The jobs as operators see them, and the runner (started only with JOBS_ENABLED; tests
    call its `run_due()` on their own clock)."""

    async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
        app[JOBS] = Jobs(app[DATABASE], settings.operators)
        app[JOB_RUNNER] = runner = job_runner(app[DATABASE], settings, clock=clock)
        if settings.jobs_enabled:
            await runner.start()
        yield
        await runner.stop()

    return jobs_ctx


async def _end_streams(app: web.Application) -> None:
    """On shutdown, before waiting for handlers: live streams end instead of holding it up."""
    if METRIC_HUB in app:
        await app[METRIC_HUB].stop()
