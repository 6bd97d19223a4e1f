"""GET /metrics on a port of its own, and prometheus_client's multiprocess mode for WORKERS > 1.

The listener is a second, tiny aiohttp app in the service's process (`serve_metrics`), started
by the runner (`metrics_listener` for a service, and in a workers process), so the API's app, its
middlewares and its OpenAPI document know nothing of it, and the gateway, which proxies `/api/...`
only, cannot hand it out. It answers loopback and the networks of `metrics_allowed_networks`,
judged by the connection's peer address (a header saying otherwise is not believed), and 403 to
everyone else.

With several workers on one port every worker listens on the metrics port too (SO_REUSEPORT):
whichever the kernel picks answers for all, reading the value files every worker writes into
one folder (`PROMETHEUS_MULTIPROC_DIR`: the operator's, emptied at start, or a temporary one).
"""

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from backend_common.settings import ServiceSettings

_log = structlog.get_logger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BOUND_PORT = web.AppKey("metrics_bound_port", int)  # the port the listener got (for port 0)
SCRAPE_TIMEOUT = 2.0  # per sampler, at a scrape

Network = IPv4Network | IPv6Network


def allowed(peer: str | None, networks: list[Network]) -> bool:
    """Whether a connection from `peer` may read the metrics: loopback, or one of `networks`."""
    if peer is None:
        return False
    try:
        address = ip_address(peer.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is no part
    except ValueError:
        return False  # a Unix socket, or something else that is not an address
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or any(address in network for network in networks)


def _peer(request: web.Request) -> str | None:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    return peername[0] if isinstance(peername, tuple) and peername else None


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type: in multiprocess mode the sum over every
    worker's files; else this process's registry (with its process and GC collectors)."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    if MULTIPROC_ENV in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def metrics_app(samplers: list[Any], settings: ServiceSettings) -> web.Application:
    """The listener's app: GET /metrics (after this process's samplers ran), nothing else."""
    from backend_common.metrics import sample

    networks = list(settings.metrics_allowed_networks)

    async def metrics(request: web.Request) -> web.Response:
        if not allowed(_peer(request), networks):
            _log.warning("metrics_refused", peer=_peer(request))
            return web.Response(status=403, text="Forbidden: /metrics is for the monitoring.\n")
        await sample(samplers, seconds_each=SCRAPE_TIMEOUT)
        body, content_type = await asyncio.to_thread(exposition)
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/metrics", metrics, name="metrics")
    return app


@contextlib.asynccontextmanager
async def serve_metrics(settings: ServiceSettings, samplers: list[Any]) -> AsyncIterator[int]:
    """The /metrics listener on `metrics_port`, and the loop running `samplers` (a list that
    may still grow) every `metrics_sample_seconds`; gives the port it listens on."""
    from backend_common.metrics import sample

    assert settings.metrics_port is not None
    runner = web.AppRunner(metrics_app(samplers, settings), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        host = settings.metrics_host or settings.host
        site = web.TCPSite(runner, host, settings.metrics_port, reuse_port=settings.workers > 1)
        await site.start()
        port: int = runner.addresses[0][1]
        _log.info("metrics_listening", host=host, port=port, worker=settings.worker)

        async def sample_every() -> None:
            while True:
                await sample(samplers, seconds_each=settings.metrics_sample_seconds)
                await asyncio.sleep(settings.metrics_sample_seconds)

        sampling = asyncio.create_task(sample_every())
        try:
            yield port
        finally:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
    finally:
        await runner.cleanup()


def metrics_listener(
    settings: ServiceSettings,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context for the service's app (the last one, so that every sampler is
    registered): serve_metrics with the app's samplers."""
    from backend_common.metrics import SAMPLERS

    async def listener(app: web.Application) -> AsyncIterator[None]:
        async with serve_metrics(settings, app[SAMPLERS]) as port:
            app[BOUND_PORT] = port
            yield

    return listener


class Multiprocess:
    """prometheus_client's multiprocess mode for one run of a service with several workers.
    `start()` before the service's modules (and so its metrics) are imported; `worker_gone(pid)`
    for each worker that exits; `stop()` at the end."""

    def __init__(self, service_name: str) -> None:
        self._service_name = service_name
        self._own_directory: Path | None = None

    def start(self) -> None:
        if "backend_common.metrics" in sys.modules:
            # Values made before the switch would live in this process's memory only.
            raise RuntimeError("metrics were created before the multiprocess mode was set up")
        given = os.environ.get(MULTIPROC_ENV)
        if given:
            directory = Path(given)
            directory.mkdir(parents=True, exist_ok=True)
            for stale in directory.glob("*.db"):  # an earlier run's values are not ours
                stale.unlink()
        else:
            directory = Path(tempfile.mkdtemp(prefix=f"etp-metrics-{self._service_name}-"))
            self._own_directory = directory
            os.environ[MULTIPROC_ENV] = str(directory)
        from prometheus_client import values

        if not getattr(values.ValueClass, "_multiprocess", False):
            values.ValueClass = values.MultiProcessValue()

    def worker_gone(self, pid: int) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)

    def stop(self) -> None:
        if self._own_directory is not None:
            shutil.rmtree(self._own_directory, ignore_errors=True)
