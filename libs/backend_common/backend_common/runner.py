"""Running a service: logging, graceful shutdown on SIGTERM/SIGINT, optional worker processes.

With `WORKERS=N` (N > 1) the process forks N - 1 more before it serves; all of them listen on the
same port (SO_REUSEPORT, the kernel spreads connections), each with its own event loop and pool,
and `settings.worker` tells them apart (0 … N - 1). The first process forwards SIGTERM/SIGINT to
the others and waits for them.
"""

import multiprocessing
import os
import signal
import ssl
from collections.abc import Callable

import structlog
import uvloop
from aiohttp import web

from backend_common.logging import configure_logging
from backend_common.settings import ServiceSettings


def run_service(settings: ServiceSettings, create_app: Callable[..., web.Application]) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting, finish in-flight requests, clean up.

    aiohttp's run_app waits up to `shutdown_timeout` for running handlers before the cleanup
    contexts close the pool and HTTP clients.
    """
    configure_logging(
        service=settings.service_name, level=settings.log_level, fmt=settings.log_format
    )
    log = structlog.get_logger(__name__)
    if settings.workers == 1:
        _serve(settings, create_app)
        return
    context = multiprocessing.get_context("fork")
    others = [
        context.Process(
            target=_serve,
            args=(settings.model_copy(update={"worker": worker}), create_app),
            name=f"{settings.service_name}-{worker}",
        )
        for worker in range(1, settings.workers)
    ]
    for process in others:
        process.start()
    try:
        _serve(settings, create_app)
    finally:
        for process in others:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in others:
            process.join()
            if process.exitcode:
                log.warning("worker_exited", worker=process.name, exitcode=process.exitcode)


def _serve(settings: ServiceSettings, create_app: Callable[..., web.Application]) -> None:
    log = structlog.get_logger(__name__)
    log.info("starting", host=settings.host, port=settings.port, worker=settings.worker)
    ssl_context = None
    if settings.tls_cert_file is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    web.run_app(
        create_app(settings),
        loop=uvloop.new_event_loop() if settings.event_loop == "uvloop" else None,
        ssl_context=ssl_context,
        host=settings.host,
        port=settings.port,
        access_log=None,
        shutdown_timeout=settings.shutdown_timeout,
        handle_signals=True,
        reuse_port=settings.workers > 1,
        print=None,
    )
    log.info("stopped", worker=settings.worker)
