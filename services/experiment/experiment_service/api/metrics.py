import math
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from aiohttp import web

from backend_common import sse
from backend_common.http import json_response, parse_path_uuid, parse_query, read_json
from backend_common.idempotency import idempotent
from backend_common.keys import SETTINGS
from backend_common.pagination import PageQuery
from backend_common.rbac import caller
from experiment_service.appkeys import METRIC_HUB, RUN_METRICS
from experiment_service.domain.metric_live import RunFilter, access_check
from experiment_service.domain.metric_models import Logged, MetricPoint, MetricSummary, SeriesFilter
from experiment_service.models import MetricSeriesQuery, NoQuery
from experiment_service.settings import ExperimentSettings

routes = web.RouteTableDef()


@routes.post("/api/v1/runs/{run_id}/metrics", name="log_run_metrics")
async def log_run_metrics(request: web.Request) -> web.StreamResponse:
    """201 with the counts once the points are stored (200 for a resend of a stored batch)."""
    # A batch of 10,000 points with long names weighs more than other bodies may.
    settings = cast(ExperimentSettings, request.app[SETTINGS])
    return await _log_run_metrics(request.clone(client_max_size=settings.metrics_max_body_bytes))


@idempotent
async def _log_run_metrics(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    document = await read_json(request, nan_tokens=True)
    logged = await request.app[RUN_METRICS].log(caller(request), run_id, document)
    return json_response(_logged(logged), status=200 if logged.duplicate else 201)


@routes.get("/api/v1/runs/{run_id}/metrics", name="list_run_metrics")
async def list_run_metrics(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    query = parse_query(request, PageQuery)
    page = await request.app[RUN_METRICS].summaries(caller(request), run_id, query.page)
    return json_response(page.map(_summary).as_json())


@routes.get("/api/v1/runs/{run_id}/metrics:stream", name="stream_run_metrics")
async def stream_run_metrics(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `metrics` event per stored batch of the run, its id the batch
    id; an `end` event with the reason when access ends while the stream runs."""
    run_id = parse_path_uuid(request, "run_id")
    parse_query(request, NoQuery)
    user = caller(request)
    metrics = request.app[RUN_METRICS]
    await metrics.readable(user, run_id)
    after = sse.last_event_id(request)
    hub = request.app[METRIC_HUB]
    sse.refuse_too_many(hub, user.user_id)
    watch = hub.watch(
        access_check(lambda: metrics.readable(user, run_id)),
        expires_at=datetime.fromtimestamp(user.claims.expires_at, UTC),
    )
    stream = hub.open(RunFilter(run_id), user_id=user.user_id, after=after)
    return await sse.serve(request, hub, stream, watch, None, _encoded)


# A name may hold "/" (e.g. "train/loss"), sent as it is or as %2F.
@routes.get("/api/v1/runs/{run_id}/metrics/{name:.+}", name="get_run_metric")
async def get_run_metric(request: web.Request) -> web.Response:
    """A page of the series in step order, or with `points`, the range drawn for a chart."""
    run_id = parse_path_uuid(request, "run_id")
    name = request.match_info["name"]
    query = parse_query(request, MetricSeriesQuery)
    flt = SeriesFilter(query.step_from, query.step_to, query.time_from, query.time_to)
    metrics = request.app[RUN_METRICS]
    if query.points is None:
        page = await metrics.series(caller(request), run_id, name, flt, query.page)
        return json_response(page.map(_point).as_json())
    chart = await metrics.chart(caller(request), run_id, name, flt, points=query.points)
    return json_response(
        {
            "items": [{"step": step, "value": _number(value)} for step, value in chart.points],
            "bucket_steps": chart.bucket_steps,
        }
    )


def _number(value: float | None) -> float | str | None:
    """A value as JSON has it: a number, or "NaN", "Infinity", "-Infinity" (no JSON literal)."""
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _logged(logged: Logged) -> dict[str, Any]:
    return {
        "run_id": logged.run_id,
        "batch_id": logged.batch_id,
        "accepted": logged.accepted,
        "late": logged.late,
        "duplicate": logged.duplicate,
    }


def _summary(summary: MetricSummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "count": summary.count,
        "finite_count": summary.finite_count,
        "min": summary.min,
        "max": summary.max,
        "avg": _number(summary.avg),
        "last": _number(summary.last),
        "last_step": summary.last_step,
        "last_timestamp": summary.last_timestamp,
    }


def _point(point: MetricPoint) -> dict[str, Any]:
    return {
        "step": point.step,
        "value": _number(point.value),
        "timestamp": point.timestamp,
        "late": point.late,
    }


def _encoded(event: dict[str, Any], _view: None) -> bytes:
    """The event as SSE bytes, encoded once whatever the number of streams."""
    if "sse" not in event:
        points = [{**point, "value": _number(point["value"])} for point in event["items"]]
        data = orjson.dumps({"batch_id": event["id"], "points": points}, option=orjson.OPT_UTC_Z)
        event["sse"] = b"id: %d\nevent: metrics\ndata: %s\n\n" % (event["id"], data)
    return cast(bytes, event["sse"])
