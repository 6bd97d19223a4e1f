"""MLflow's metric histories: the ETP run metric's points, in step order."""

from typing import Any

from aiohttp import web

from backend_common.http import json_response, parse_query
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import caller
from experiment_service.api.mlflow.wire import (
    BulkIntervalQuery,
    HistoryQuery,
    key_project,
    millis,
    number,
    run_id_of,
)
from experiment_service.appkeys import RUN_METRICS
from experiment_service.domain.errors import MetricNotFound
from experiment_service.domain.metric_models import MetricPoint, SeriesFilter

routes = web.RouteTableDef()
PREFIX = "/api/2.0/mlflow/metrics"
# Points per answer when the client names no max_results (it follows next_page_token).
HISTORY_PAGE = 25_000


def _point(key: str, point: MetricPoint) -> dict[str, Any]:
    return {
        "key": key,
        "value": number(point.value),
        "timestamp": millis(point.timestamp),
        "step": point.step,
    }


@routes.get(f"{PREFIX}/get-history", name="mlflow_get_metric_history")
async def get_metric_history(request: web.Request) -> web.Response:
    query = parse_query(request, HistoryQuery)
    key_project(request)
    page = PageRequest(limit=query.max_results or HISTORY_PAGE, cursor=query.page_token)
    try:
        points = await request.app[RUN_METRICS].series(
            caller(request), query.id, query.metric_key, SeriesFilter(), page
        )
    except MetricNotFound:
        # MLflow's answer for a metric the run never logged: an empty history.
        points = Page(items=[], next_cursor=None)
    answer: dict[str, Any] = {"metrics": [_point(query.metric_key, p) for p in points.items]}
    if points.next_cursor:
        answer["next_page_token"] = points.next_cursor
    return json_response(answer)


@routes.get(f"{PREFIX}/get-history-bulk-interval", name="mlflow_get_metric_history_bulk")
async def get_metric_history_bulk_interval(request: web.Request) -> web.Response:
    """The points of several runs' metric in a step range, at most max_results per run (the
    first ones: ETP's charts downsample through its own API)."""
    query = parse_query(request, BulkIntervalQuery, repeated=("run_ids",))
    key_project(request)
    flt = SeriesFilter(
        step_from=query.start_step,
        step_to=None if query.end_step is None else query.end_step + 1,
    )
    metrics: list[dict[str, Any]] = []
    for text in dict.fromkeys(query.run_ids):
        run_id = run_id_of(text)
        try:
            points = await request.app[RUN_METRICS].series(
                caller(request), run_id, query.metric_key, flt, PageRequest(limit=query.max_results)
            )
        except MetricNotFound:
            continue
        metrics += [
            {**_point(query.metric_key, point), "run_id": run_id.hex} for point in points.items
        ]
    return json_response({"metrics": metrics})
