"""The experiment service's background jobs (docs/jobs.md): what each does and how often. The
runner (backend_common.jobs) runs them in every experiment process with JOBS_ENABLED, and in
`python -m experiment_service.workers`; one process at a time runs each."""

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from backend_common.clock import Clock, utc_now
from backend_common.db import Database
from backend_common.idempotency import purge_expired
from backend_common.jobs import Job, JobContext, JobRunner
from experiment_service.domain.backfills import ANNOUNCE_JOB, Backfills
from experiment_service.domain.project_deletions import JOB as DELETE_PROJECTS
from experiment_service.domain.project_deletions import ProjectDeletions
from experiment_service.domain.retention import Retention
from experiment_service.domain.sensor_status import SensorWatch
from experiment_service.domain.sensors import Liveness
from experiment_service.domain.upkeep import Upkeep
from experiment_service.settings import ExperimentSettings

SERVICE = "experiment"


def experiment_jobs(db: Database, settings: ExperimentSettings) -> list[Job]:
    upkeep = Upkeep(db, stale_after=timedelta(seconds=settings.stale_run_after_seconds))
    sensor_watch = SensorWatch(db, liveness(settings))
    retention = Retention(
        db,
        audit=timedelta(days=settings.audit_retention_days),
        webhook_events=timedelta(days=settings.webhook_retention_days),
        job_history=timedelta(days=settings.job_history_days),
    )

    deletions = ProjectDeletions(
        db,
        utc_now,
        chunk=settings.project_deletion_chunk,
        pause=settings.project_deletion_pause,
    )

    backfills = Backfills(db, utc_now)

    async def announce_backfills(context: JobContext) -> Mapping[str, Any]:
        return {"announced": await backfills.announce_finished(context.now, job=context.name)}

    async def delete_projects(context: JobContext) -> Mapping[str, Any]:
        return await deletions.delete_pending(context.now)

    async def purge_idempotency_keys(context: JobContext) -> Mapping[str, Any]:
        return {"purged": await purge_expired(db.pool, context.now)}

    async def fail_stale_runs(context: JobContext) -> Mapping[str, Any]:
        return {"failed": await upkeep.fail_stale_runs(context.now, job=context.name)}

    async def reconcile_captures(context: JobContext) -> Mapping[str, Any]:
        return {
            "stopped": await upkeep.stop_due_captures(context.now, job=context.name),
            "closed": await upkeep.close_captures_of_ended_runs(context.now, job=context.name),
        }

    async def watch_sensors(context: JobContext) -> Mapping[str, Any]:
        return await sensor_watch.watch(context.now)

    async def purge_audit(context: JobContext) -> Mapping[str, Any]:
        return {"deleted": await retention.purge_audit(context.now)}

    async def purge_webhook_events(context: JobContext) -> Mapping[str, Any]:
        return {"deleted": await retention.purge_webhook_events(context.now)}

    async def purge_job_runs(context: JobContext) -> Mapping[str, Any]:
        return {"deleted": await retention.purge_job_runs(context.now)}

    every_hour = timedelta(seconds=settings.retention_interval)
    return [
        Job(
            "audit_log.purge",
            every_hour,
            purge_audit,
            "Deletes audit rows older than AUDIT_RETENTION_DAYS.",
        ),
        Job(
            "webhook_events.purge",
            every_hour,
            purge_webhook_events,
            "Deletes webhook events (deliveries, attempts) older than WEBHOOK_RETENTION_DAYS"
            " whose deliveries are all over.",
        ),
        Job(
            "job_runs.purge",
            every_hour,
            purge_job_runs,
            "Deletes job runs older than JOB_HISTORY_DAYS (each job's last one stays).",
        ),
        Job(
            "idempotency_keys.purge",
            timedelta(seconds=settings.idempotency_purge_interval),
            purge_idempotency_keys,
            "Deletes stored Idempotency-Key answers past their 24 hours.",
        ),
        Job(
            "runs.fail_stale",
            timedelta(seconds=settings.stale_runs_interval),
            fail_stale_runs,
            "Fails running runs without a change, telemetry or metric for their stale time.",
        ),
        Job(
            "capture_sessions.reconcile",
            timedelta(seconds=settings.capture_upkeep_interval),
            reconcile_captures,
            "Stops capture sessions whose duration has elapsed and closes those of ended runs.",
        ),
        Job(
            DELETE_PROJECTS,
            timedelta(seconds=settings.project_deletion_interval),
            delete_projects,
            "Deletes the rows of projects deleted in the auth service, in chunks.",
        ),
        Job(
            ANNOUNCE_JOB,
            timedelta(seconds=settings.backfill_announce_interval),
            announce_backfills,
            "Announces finished conversion backfills (audit row, capture.backfill.finished).",
        ),
        Job(
            "sensors.watch_status",
            timedelta(seconds=settings.sensor_status_interval),
            watch_sensors,
            "Announces sensors going offline and coming back; marks the data gaps of captures.",
        ),
    ]


def liveness(settings: ExperimentSettings) -> Liveness:
    return Liveness(
        online_within=timedelta(seconds=settings.sensor_online_seconds),
        offline_after=timedelta(seconds=settings.sensor_offline_seconds),
    )


def job_runner(db: Database, settings: ExperimentSettings, *, clock: Clock = utc_now) -> JobRunner:
    return JobRunner.from_settings(
        db, experiment_jobs(db, settings), settings, service=SERVICE, clock=clock
    )
