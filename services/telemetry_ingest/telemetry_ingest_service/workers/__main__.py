"""`python -m telemetry_ingest_service.workers`: the telemetry service's background jobs as a
process of its own, with the service's settings (TELEMETRY_INGEST_*). The loops that belong to
an ingest process (spool drain, heartbeat flush) stay in it. SIGTERM or SIGINT stops it."""

from backend_common.runner import run_workers
from telemetry_ingest_service.settings import TelemetryIngestSettings
from telemetry_ingest_service.workers.jobs import job_runner


def main() -> None:
    settings = TelemetryIngestSettings(service_name="telemetry-workers")
    run_workers(settings, lambda db: [job_runner(db, settings)])


if __name__ == "__main__":
    main()
