import asyncio
import functools
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, create_model

from backend_common.export import stream_export
from backend_common.http import json_response, parse_query
from backend_common.keys import SETTINGS
from backend_common.rbac import caller
from telemetry_ingest_service.appkeys import READINGS
from telemetry_ingest_service.domain.alignment import ORIGIN
from telemetry_ingest_service.domain.errors import ExportTimedOut
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
from telemetry_ingest_service.settings import TelemetryIngestSettings

routes = web.RouteTableDef()
EXPORT_HEADERS = web.RequestKey("export_headers", dict[str, str])


def selection_of(
    query: HistoryQuery | ExportQuery | AggregateQuery | AlignedQuery | StreamQuery,
) -> Selection:
    """The readings a query model names (a stream's has no range)."""
    return Selection(
        sensor_ids=tuple(dict.fromkeys(query.sensor_id)),  # each once, in the order given
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
    """Per sensor and bucket: count, min, max, avg, time-weighted avg, first and last value."""
    query = parse_query(request, AggregateQuery, repeated=READING_REPEATED)
    bucket = query.bucket or bucket_for_points(query.start, query.end, query.points or 1)
    items = await request.app[READINGS].aggregate(
        caller(request), selection_of(query), layer=query.layer, bucket=bucket
    )
    return json_response({"bucket": bucket, "origin": ORIGIN, "layer": query.layer, "items": items})


@routes.get("/api/v1/telemetry/aligned", name="align_telemetry")
async def align_telemetry(request: web.Request) -> web.Response:
    """Several sensors on one time grid (fill none, previous or linear), with receive lags."""
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
    settings = request.app[SETTINGS]
    assert isinstance(settings, TelemetryIngestSettings)
    try:
        # A client that stops reading holds the export's connection: the time limit ends it.
        async with (
            asyncio.timeout(settings.export_max_seconds),
            request.app[READINGS].export(user, selection, layer=query.layer) as export,
        ):
            request[EXPORT_HEADERS] = {"Export-Row-Limit": str(export.max_rows)}
            if export.truncated:
                request[EXPORT_HEADERS]["Export-Truncated"] = "row_limit"
            model = _export_model(export.fields)

            async def items() -> Any:
                async for row in export.rows:
                    yield model.model_validate(row)

            return await stream_export(
                request, items(), fmt=query.format, name="telemetry", columns=export.fields
            )
    except TimeoutError:
        if request.writer.output_size and request.transport is not None:
            # Part of the export went out: the client sees it cut, not a clean end.
            request.transport.abort()
        raise ExportTimedOut(
            f"The export ran past {settings.export_max_seconds:g} s; narrow the range."
        ) from None


async def export_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: an export's own headers (its row cap, and whether it was cut)."""
    response.headers.update(request.get(EXPORT_HEADERS, {}))
