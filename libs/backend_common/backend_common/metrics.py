"""Prometheus metrics every service shares: requests per route (RED), the database pool, rate
limits, live streams, jobs; and the samplers that set gauges of a process.

Metric objects live at module level, as prometheus_client wants. With WORKERS > 1 the runner
turns on prometheus_client's multiprocess mode before this module is imported
(backend_common.metrics_server), so every value below is written to a file a scrape of any
worker adds up. A gauge says how its workers' values combine (`multiprocess_mode`): `livesum` for
what each worker holds (its pool, its streams), `mostrecent` for what all of them read from the
database (the last reading wins).

Services add their own domain metrics in a `monitoring` module of their own (`metrics` means run
metrics in the experiment service), used where the events happen; names start with `etp_`.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

_log = structlog.get_logger(__name__)

# Up to a minute: exports and live streams are routes of their own, so their long durations do
# not blur the others'.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "etp_http_requests_total",
    "HTTP requests answered, by route name, method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "etp_http_request_duration_seconds",
    "Time from a request's arrival to its answer (a stream: to its end), by route name.",
    ["route", "method"],
    buckets=DURATION_BUCKETS,
)
DB_POOL_CONNECTIONS = Gauge(
    "etp_db_pool_connections",
    "Database pool connections by state (in_use, idle), and the pool's bound (max).",
    ["state"],
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "etp_db_pool_waiting",
    "Tasks waiting for a database pool connection.",
    multiprocess_mode="livesum",
)
RATE_LIMIT_REJECTIONS = Counter(
    "etp_rate_limit_rejections_total",
    "Requests refused by a rate limit (429), by limit.",
    ["limit"],
)
LIVE_STREAMS = Gauge(
    "etp_live_streams",
    "Open live streams (server-sent events), by kind.",
    ["stream"],
    multiprocess_mode="livesum",
)
LIVE_STREAM_DROPS = Counter(
    "etp_live_stream_drops_total",
    "Live streams cut off because their client did not keep up, by kind.",
    ["stream"],
)
# `job_name`, not `job`: Prometheus gives every scraped series its target's `job` label.
JOB_RUNS = Counter(
    "etp_job_runs_total",
    "Background job runs by job name and status (succeeded, failed, superseded).",
    ["job_name", "status"],
)
JOB_DURATION = Histogram(
    "etp_job_duration_seconds",
    "How long background job runs took, by job name.",
    ["job_name"],
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0),
)

UNMATCHED = "unmatched"  # a request no route took (404 or 405 from the router)
# The parser takes some 30 methods (WebDAV's, TRACE, …): the unusual ones are one series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
CLIENT_GONE = "499"  # the client went away before the answer (nginx's number for it)


def route_label(request: web.Request) -> str:
    """The route's name; an unnamed route's pattern (`/api/v1/runs/{run_id}`), never the raw
    path, whose ids would make a series per resource."""
    route = request.match_info.route
    if route.name:
        return route.name
    resource = route.resource
    return resource.canonical if resource is not None else UNMATCHED


# (route, method, status) → its request counter and duration histogram: `labels()` costs more
# than the counting itself, and the gateway counts every request it forwards.
_SERIES: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def _series(route: str, method: str, status: str) -> tuple[Any, Any]:
    key = (route, method, status)
    series = _SERIES.get(key)
    if series is None:
        series = (HTTP_REQUESTS.labels(route, method, status), HTTP_DURATION.labels(route, method))
        _SERIES[key] = series
    return series


@web.middleware
async def http_metrics_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    started = time.perf_counter()
    status = "500"
    try:
        response = await handler(request)
        status = str(response.status)
        return response
    except web.HTTPException as exc:
        status = str(exc.status)
        raise
    except asyncio.CancelledError:
        status = CLIENT_GONE
        raise
    finally:
        method = request.method if request.method in _METHODS else OTHER_METHOD
        requests, duration = _series(route_label(request), method, status)
        requests.inc()
        duration.observe(time.perf_counter() - started)


# Something that sets gauges of this process: run every metrics_sample_seconds and before each
# scrape answered by this process. May be a coroutine function (e.g. a database query).
Sampler = Callable[[], Awaitable[None] | None]
SAMPLERS = web.AppKey("metric_samplers", list[Sampler])


def add_sampler(app: web.Application, sampler: Sampler) -> None:
    app[SAMPLERS].append(sampler)


async def sample(samplers: list[Sampler], *, seconds_each: float) -> None:
    """Runs every sampler; one that fails or takes longer than `seconds_each` leaves its gauges as
    they were (logged), never in the way of the others."""
    for sampler in samplers:
        try:
            async with asyncio.timeout(seconds_each):
                outcome = sampler()
                if outcome is not None:
                    await outcome
        except Exception as exc:
            _log.warning("metric_sampler_failed", sampler=repr(sampler), error=repr(exc))


def pool_sampler(pool: asyncpg.Pool) -> Sampler:
    def sample_pool() -> None:
        size, idle = pool.get_size(), pool.get_idle_size()
        DB_POOL_CONNECTIONS.labels("in_use").set(size - idle)
        DB_POOL_CONNECTIONS.labels("idle").set(idle)
        DB_POOL_CONNECTIONS.labels("max").set(pool.get_max_size())
        DB_POOL_WAITING.set(pool_waiters(pool))

    return sample_pool


def pool_waiters(pool: asyncpg.Pool) -> int:
    """Acquirers waiting for a connection. asyncpg keeps free connections in an asyncio queue
    (`_queue`) and says nothing of its waiters, so they are counted there (a test pins this)."""
    queue = getattr(pool, "_queue", None)
    getters = getattr(queue, "_getters", ())
    return sum(1 for waiter in getters if not waiter.done())
