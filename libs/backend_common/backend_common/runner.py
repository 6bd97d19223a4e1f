"""Running a service process: logging, graceful shutdown on SIGTERM/SIGINT."""

import ssl
from collections.abc import Callable

import structlog
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
    log.info("starting", host=settings.host, port=settings.port)
    ssl_context = None
    if settings.tls_cert_file is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    web.run_app(
        create_app(settings),
        ssl_context=ssl_context,
        host=settings.host,
        port=settings.port,
        access_log=None,
        shutdown_timeout=settings.shutdown_timeout,
        handle_signals=True,
        print=None,
    )
    log.info("stopped")
