import functools
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, create_model

from backend_common.export import stream_bounded_export
from backend_common.export_budget import ExportRows
from backend_common.http import json_response, parse_query
from backend_common.rbac import caller
from telemetry_ingest_service.appkeys import READINGS
from telemetry_ingest_service.domain.alignment import ORIGIN
from telemetry_ingest_service.domain.readings import bucket_for_points
from telemetry_ingest_service.models import (
    READING_REPEATED,
    AggregateQuery,
    AlignedQuery,
    ExportQuery,
    HistoryQuery,
    StreamQuery,
)
from telemetry_ingest_service.repositories.readings import Selection

routes = web.RouteTableDef()


def selection_of(
    query: HistoryQuery | ExportQuery | AggregateQuery | AlignedQuery | StreamQuery,
) -> Selection:
    """The readings a query model names (a stream's has no range)."""
    return Selection(
        sensor_ids=tuple(dict.fromkeys(query.sensor_id)),  # each once, in the order given
        signals=tuple(dict.fromkeys(query.signal)),
        run_id=query.run_id,
        capture_session_id=query.capture_session_id,
        start=getattr(query, "start", None),
        end=getattr(query, "end", None),
    )


@routes.get("/api/v1/telemetry", name="list_telemetry")
async def list_telemetry(request: web.Request) -> web.Response:
    """Stored readings in (timestamp, batch, seq) order, keyset-paginated."""
    query = parse_query(request, HistoryQuery, repeated=READING_REPEATED)
    page = await request.app[READINGS].page(
        caller(request), selection_of(query), layer=query.layer, page=query.page
    )
    return json_response(page.as_json())


@routes.get("/api/v1/telemetry/aggregate", name="aggregate_telemetry")
async def aggregate_telemetry(request: web.Request) -> web.Response:
    """Per sensor, channel and bucket: count, min, max, avg, time-weighted avg, first and last
    value."""
    query = parse_query(request, AggregateQuery, repeated=READING_REPEATED)
    bucket = query.bucket or bucket_for_points(query.start, query.end, query.points or 1)
    items = await request.app[READINGS].aggregate(
        caller(request), selection_of(query), layer=query.layer, bucket=bucket
    )
    return json_response({"bucket": bucket, "origin": ORIGIN, "layer": query.layer, "items": items})


@routes.get("/api/v1/telemetry/aligned", name="align_telemetry")
async def align_telemetry(request: web.Request) -> web.Response:
    """Several sensors' channels on one time grid (fill none, previous or linear), with receive
    lags."""
    query = parse_query(request, AlignedQuery, repeated=READING_REPEATED)
    aligned = await request.app[READINGS].aligned(
        caller(request), selection_of(query), step=query.step, fill=query.fill, layer=query.layer
    )
    return json_response(
        {
            "step_seconds": query.step.total_seconds(),
            "fill": query.fill,
            "layer": query.layer,
            **aligned,
        }
    )


# The type of each reading field in exports.
_FIELD_TYPES: dict[str, Any] = {
    "timestamp": datetime,
    "received_at": datetime,
    "sensor_id": uuid.UUID,
    "raw_value": float,
    "physical_value": float | None,
    "signal": str,
    "conversion_status": str,
    "late": bool,
    "run_id": uuid.UUID | None,
    "capture_session_id": uuid.UUID | None,
    "meta": dict[str, Any] | None,
}


@functools.cache
def _export_model(fields: tuple[str, ...]) -> type[BaseModel]:
    """A reading with these fields, as exports write it."""
    definitions: dict[str, Any] = {name: (_FIELD_TYPES[name], ...) for name in fields}
    return create_model("Reading", **definitions)


@routes.get("/api/v1/telemetry/export", name="export_telemetry")
async def export_telemetry(request: web.Request) -> web.StreamResponse:
    """Every selected reading in time order (up to the row cap), streamed as CSV or JSON."""
    query = parse_query(request, ExportQuery, repeated=READING_REPEATED)
    user, selection = caller(request), selection_of(query)
    readings = request.app[READINGS]
    return await stream_bounded_export(
        request,
        _as_models(readings.export(user, selection, layer=query.layer)),
        max_seconds=readings.export_limits.max_seconds,
        fmt=query.format,
        name="telemetry",
    )


@asynccontextmanager
async def _as_models(
    export: AbstractAsyncContextManager[ExportRows[dict[str, Any]]],
) -> AsyncIterator[ExportRows[BaseModel]]:
    """The export's rows as readings with its fields, as exports write them."""
    async with export as opened:
        yield opened.map(_export_model(opened.columns).model_validate)
