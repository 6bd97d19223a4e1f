import asyncio
import contextlib
from typing import Any

import orjson
from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.http import parse_query
from backend_common.rbac import caller
from telemetry_ingest_service.api.readings import selection_of
from telemetry_ingest_service.appkeys import HUB, READINGS
from telemetry_ingest_service.domain.live import CLOSED, Filter, Stream
from telemetry_ingest_service.models import READING_REPEATED, StreamQuery

routes = web.RouteTableDef()


@routes.get("/api/v1/telemetry/stream", name="stream_telemetry")
async def stream_telemetry(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `readings` event per stored batch, its id the batch id."""
    query = parse_query(request, StreamQuery, repeated=READING_REPEATED)
    user = caller(request)
    fields = await request.app[READINGS].fields(user, selection_of(query), query.layer)
    after = _last_event_id(request)
    hub = request.app[HUB]
    if not hub.can_open(user.user_id):
        raise ProblemError(429, "too_many_streams", "Close a live stream before opening another.")
    stream = hub.open(
        Filter(frozenset(query.sensor_id), query.run_id, query.capture_session_id),
        user_id=user.user_id,
        after=after,
    )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        # A client that goes away ends its stream like a cut-off one does.
        with contextlib.suppress(ConnectionResetError):
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n")
            while (event := await _next(stream, hub.keepalive, response)) is not CLOSED:
                await response.write(_encoded(event, fields))
    finally:
        hub.close(stream)
    return response


async def _next(stream: Stream, keepalive: float, response: web.StreamResponse) -> Any:
    """The stream's next event; a keep-alive comment for each idle `keepalive` seconds."""
    while True:
        try:
            return await asyncio.wait_for(stream.queue.get(), keepalive)
        except TimeoutError:
            await response.write(b": keep-alive\n\n")


def _last_event_id(request: web.Request) -> int | None:
    value = request.headers.get("Last-Event-ID")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ProblemError(400, "invalid_last_event_id", "Last-Event-ID is an event id we sent.")
    return int(value)


def _encoded(event: dict[str, Any], fields: tuple[str, ...]) -> bytes:
    """The event as SSE bytes with these reading fields, encoded once per set of fields whatever
    the number of streams."""
    key = "sse:" + ",".join(fields)
    if key not in event:
        readings = [{name: reading[name] for name in fields} for reading in event["readings"]]
        data = orjson.dumps(
            {"batch_id": event["id"], "readings": readings}, option=orjson.OPT_UTC_Z
        )
        event[key] = b"id: %d\nevent: readings\ndata: %s\n\n" % (event["id"], data)
    return event[key]
