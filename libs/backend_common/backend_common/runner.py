"""Running a service: logging, graceful shutdown on SIGTERM/SIGINT, optional worker processes.

With `WORKERS=N` (N > 1) the process forks N - 1 more before it serves; all of them listen on the
same port (SO_REUSEPORT, the kernel spreads connections), each with its own event loop and pool,
and `settings.worker` tells them apart (0 … N - 1). The first process forwards SIGTERM/SIGINT to
the others and waits for them.

Each process also serves GET /metrics on `metrics_port` (backend_common.metrics_server); with
several workers in prometheus_client's multiprocess mode, set up before the service's modules are
imported: so `create_app` is given as "package.module:function" and imported here.
"""

import asyncio
import contextlib
import importlib
import multiprocessing
import os
import signal
import ssl
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog
import uvloop
from aiohttp import web

from backend_common.db import Database, create_pool
from backend_common.logging import configure_logging
from backend_common.metrics_server import Multiprocess, metrics_listener, serve_metrics
from backend_common.settings import DatabaseSettings, ServiceSettings, mask_dsn

AppFactory = Callable[..., web.Application]


def run_service(settings: ServiceSettings, create_app: AppFactory | str) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting, finish in-flight requests, clean up.

    aiohttp's run_app waits up to `shutdown_timeout` for running handlers before the cleanup
    contexts close the pool and HTTP clients. `create_app` is the factory or its import path
    ("package.module:function"); with WORKERS > 1 it must be the path (see the module's doc).
    """
    configure_logging(
        service=settings.service_name, level=settings.log_level, fmt=settings.log_format
    )
    if settings.workers == 1:
        _serve(settings, _factory(create_app))
        return
    metrics = Multiprocess(settings.service_name)
    metrics.start()
    try:
        _serve_workers(settings, _factory(create_app), metrics)
    finally:
        metrics.stop()


def _factory(create_app: AppFactory | str) -> AppFactory:
    if not isinstance(create_app, str):
        return create_app
    module, _, name = create_app.partition(":")
    factory: AppFactory = getattr(importlib.import_module(module), name)
    return factory


def _serve_workers(
    settings: ServiceSettings, create_app: AppFactory, metrics: Multiprocess
) -> None:
    log = structlog.get_logger(__name__)
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
            if process.pid is not None:
                metrics.worker_gone(process.pid)
            if process.exitcode:
                log.warning("worker_exited", worker=process.name, exitcode=process.exitcode)


def _serve(settings: ServiceSettings, create_app: AppFactory) -> None:
    log = structlog.get_logger(__name__)
    log.info("starting", host=settings.host, port=settings.port, worker=settings.worker)
    ssl_context = None
    if settings.tls_cert_file is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    app = create_app(settings)
    if settings.metrics_port is not None:
        app.cleanup_ctx.append(metrics_listener(settings))
    web.run_app(
        app,
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


class Worker(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def run_workers(settings: DatabaseSettings, make: Callable[[Database], Sequence[Worker]]) -> None:
    """A service's background work as a process of its own (`python -m <service>.workers`): the
    workers `make` gives on the service's database run until SIGTERM or SIGINT, then stop in the
    reverse order. It serves GET /metrics when `<PREFIX>METRICS_PORT` is set for it (the
    default is the service's port)."""
    configure_logging(
        service=settings.service_name, level=settings.log_level, fmt=settings.log_format
    )
    asyncio.run(_work(settings, make))


async def _work(settings: DatabaseSettings, make: Callable[[Database], Sequence[Worker]]) -> None:
    dsn = settings.database_url.get_secret_value()
    structlog.get_logger(__name__).info("database_connecting", dsn=mask_dsn(dsn))
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
    workers = make(Database(pool))
    try:
        async with contextlib.AsyncExitStack() as stack:
            # Only when given for this process: the default port is the service's own.
            if "metrics_port" in settings.model_fields_set and settings.metrics_port is not None:
                from backend_common.metrics import pool_sampler

                await stack.enter_async_context(serve_metrics(settings, [pool_sampler(pool)]))
            for worker in workers:
                await worker.start()
            await stop.wait()
            for worker in reversed(workers):
                await worker.stop()
    finally:
        await pool.close()
