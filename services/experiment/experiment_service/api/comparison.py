import uuid
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web

from backend_common.export import csv_document
from backend_common.http import json_response, parse_query
from backend_common.rbac import caller
from experiment_service.appkeys import COMPARISONS
from experiment_service.domain.comparison_models import Comparison
from experiment_service.models import COMPARE_REPEATED, CompareQuery, OverlayQuery

routes = web.RouteTableDef()

CSV_RUN_FIELDS = (
    "name",
    "experiment_id",
    "status",
    "tags",
    "started_at",
    "finished_at",
    "duration_seconds",
)
CSV_METRIC_STATS = ("count", "min", "max", "avg", "last", "last_step")
CSV_DELTA_STATS = ("min", "max", "avg", "last")
CSV_TELEMETRY_STATS = ("sensor_name", "count", "min", "max", "avg", "twa")


@routes.get("/api/v1/runs:compare", name="compare_runs")
async def compare_runs(request: web.Request) -> web.Response:
    query = parse_query(request, CompareQuery, repeated=COMPARE_REPEATED)
    comparison = await request.app[COMPARISONS].compare(caller(request), query.request())
    if query.format == "csv":
        return web.Response(
            body=csv_document(comparison_table(comparison)),
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="runs-compare.csv"',
                "Cache-Control": "no-store",
            },
        )
    return json_response(comparison)


@routes.get("/api/v1/runs:compare/overlay", name="overlay_runs")
async def overlay_runs(request: web.Request) -> web.Response:
    query = parse_query(request, OverlayQuery, repeated=COMPARE_REPEATED)
    return json_response(await request.app[COMPARISONS].overlay(caller(request), query.request()))


def _cell(value: Any) -> Any:
    """Booleans as true/false (as in JSON), nothing as an empty cell."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _param_cell(run_id: uuid.UUID, values: dict[uuid.UUID, Any]) -> Any:
    """A param's text as it is, any other value as JSON (`null` too); nothing when the run
    does not have the param."""
    if run_id not in values:
        return None
    value = values[run_id]
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def comparison_table(comparison: Comparison) -> Iterator[list[Any]]:
    """The comparison as a table with one column per run (its id in the header), one row per
    run field, param, metric statistic and telemetry statistic:
    `section, name, stat, differs, <run>...`."""
    run_ids = [run.id for run in comparison.runs]
    yield ["section", "name", "stat", "differs", *map(str, run_ids)]
    shown = [run.model_dump(mode="json") for run in comparison.runs]
    for field in CSV_RUN_FIELDS:
        yield ["run", field, "", "", *(run[field] for run in shown)]
    yield ["run", "baseline", "", "", *(_cell(run_id == comparison.baseline) for run_id in run_ids)]
    for param in comparison.params:
        values = [_param_cell(run_id, param.values) for run_id in run_ids]
        yield ["param", param.key, "", _cell(param.differs), *values]
    for metric in comparison.metrics:
        summaries = [metric.values.get(run_id) for run_id in run_ids]
        for stat in CSV_METRIC_STATS:
            cells = [_cell(getattr(s, stat)) if s else None for s in summaries]
            yield ["metric", metric.name, stat, _cell(metric.differs), *cells]
        for stat in CSV_DELTA_STATS:
            cells = [_cell(getattr(s.delta, stat)) if s and s.delta else None for s in summaries]
            yield ["metric", metric.name, f"delta_{stat}", _cell(metric.differs), *cells]
    # Telemetry lines up the runs' capture sessions by ordinal: sensor id/signal/session ordinal.
    cells_of: dict[str, dict[Any, Any]] = {}
    for row in comparison.telemetry:
        name = f"{row.sensor_id}/{row.signal or ''}/{row.ordinal_number}"
        cells_of.setdefault(name, {})[row.run_id] = row
    for name, of_run in cells_of.items():
        for stat in CSV_TELEMETRY_STATS:
            cells = [_cell(getattr(of_run[r], stat)) if r in of_run else None for r in run_ids]
            yield ["telemetry", name, stat, "", *cells]
