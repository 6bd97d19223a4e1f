"""`python -m experiment_service.workers`: the service's background workers (today the webhook
dispatcher) as a process of their own, with the experiment service's settings (EXPERIMENT_*).
SIGTERM or SIGINT stops it."""

import asyncio
import signal

import structlog

from backend_common.db import Database, create_pool
from backend_common.logging import configure_logging
from backend_common.settings import mask_dsn
from experiment_service.settings import ExperimentSettings
from experiment_service.workers.dispatcher import Dispatcher


async def serve(settings: ExperimentSettings) -> None:
    log = structlog.get_logger(__name__)
    dsn = settings.database_url.get_secret_value()
    log.info("database_connecting", dsn=mask_dsn(dsn))
    pool = await create_pool(
        dsn,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        command_timeout=settings.db_command_timeout,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    dispatcher = Dispatcher(Database(pool), settings)
    try:
        await dispatcher.start()
        await stop.wait()
        await dispatcher.stop()
    finally:
        await pool.close()


def main() -> None:
    settings = ExperimentSettings(service_name="experiment-dispatcher")
    configure_logging(
        service=settings.service_name, level=settings.log_level, fmt=settings.log_format
    )
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
