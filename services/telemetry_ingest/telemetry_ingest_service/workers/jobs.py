"""The telemetry service's background jobs (docs/jobs.md), run by backend_common's job runner
in every ingest process with JOBS_ENABLED and in `python -m telemetry_ingest_service.workers`;
one process at a time runs each."""

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from backend_common.clock import Clock, utc_now
from backend_common.db import Database
from backend_common.jobs import Job, JobContext, JobRunner
from telemetry_ingest_service.domain.backfills import JOB as CONVERSION_BACKFILL
from telemetry_ingest_service.domain.backfills import ConversionBackfills
from telemetry_ingest_service.domain.deletions import SensorDeletions
from telemetry_ingest_service.domain.retention import ProjectRetention
from telemetry_ingest_service.domain.storage import Storage
from telemetry_ingest_service.settings import TelemetryIngestSettings

SERVICE = "telemetry_ingest"


def storage(db: Database, settings: TelemetryIngestSettings) -> Storage:
    days = settings.retention_days
    return Storage(db, retention=timedelta(days=days) if days else None)


def telemetry_jobs(
    db: Database, settings: TelemetryIngestSettings, *, clock: Clock = utc_now
) -> list[Job]:
    upkeep = storage(db, settings)
    retention = ProjectRetention(db)
    deletions = SensorDeletions(db)
    backfills = ConversionBackfills(
        db,
        clock,
        chunk=settings.backfill_chunk,
        lanes=settings.backfill_lanes,
        pause=settings.backfill_pause,
    )

    async def run_backfills(context: JobContext) -> Mapping[str, Any]:
        return await backfills.run(context.now)

    async def purge_deleted_sensors(context: JobContext) -> Mapping[str, Any]:
        return await deletions.purge(context.now)

    async def apply_project_retention(context: JobContext) -> Mapping[str, Any]:
        return await retention.apply(context.now)

    async def maintain_storage(context: JobContext) -> Mapping[str, Any]:
        await upkeep.maintain()
        return {}

    return [
        Job(
            "telemetry.storage_upkeep",
            timedelta(seconds=settings.storage_upkeep_interval),
            maintain_storage,
            "Creates the readings' partitions for the coming months and applies the retention.",
        ),
        Job(
            "telemetry.project_retention",
            timedelta(seconds=settings.storage_upkeep_interval),
            apply_project_retention,
            "Deletes raw readings and rollup minutes past their project's retention.",
        ),
        Job(
            "telemetry.deleted_sensors_purge",
            timedelta(seconds=settings.deleted_sensors_interval),
            purge_deleted_sensors,
            "Deletes the readings, rollup and ingest errors of sensors deleted with their project.",
        ),
        Job(
            CONVERSION_BACKFILL,
            timedelta(seconds=settings.backfill_interval),
            run_backfills,
            "Converts again, in chunks, the readings of profiles published for a past start.",
        ),
    ]


def job_runner(
    db: Database, settings: TelemetryIngestSettings, *, clock: Clock = utc_now
) -> JobRunner:
    return JobRunner.from_settings(
        db, telemetry_jobs(db, settings, clock=clock), settings, service=SERVICE, clock=clock
    )
