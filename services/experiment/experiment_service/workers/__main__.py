"""`python -m experiment_service.workers`: the service's background work as a process of its
own, with the experiment service's settings (EXPERIMENT_*): the webhook dispatcher
(WEBHOOK_DISPATCHER_ENABLED) and the job runner (JOBS_ENABLED). SIGTERM or SIGINT stops it."""

from backend_common.db import Database
from backend_common.runner import Worker, run_workers
from experiment_service.settings import ExperimentSettings
from experiment_service.workers.dispatcher import Dispatcher
from experiment_service.workers.jobs import job_runner


def main() -> None:
    settings = ExperimentSettings(service_name="experiment-workers")

    def workers(db: Database) -> list[Worker]:
        chosen: list[Worker] = []
        if settings.webhook_dispatcher_enabled:
            chosen.append(Dispatcher(db, settings))
        if settings.jobs_enabled:
            chosen.append(job_runner(db, settings))
        return chosen

    run_workers(settings, workers)


if __name__ == "__main__":
    main()
