import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.http import parse_query
from backend_common.rbac import caller
from telemetry_ingest_service.api.readings import selection_of
from telemetry_ingest_service.appkeys import HUB, READINGS
from telemetry_ingest_service.domain.live import CLOSED, Filter, Stream, StreamEnded, Watch
from telemetry_ingest_service.models import READING_REPEATED, StreamQuery

routes = web.RouteTableDef()


@routes.get("/api/v1/telemetry/stream", name="stream_telemetry")
async def stream_telemetry(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `readings` event per stored batch, its id the batch id; an `end`
    event with the reason when access ends while the stream runs."""
    query = parse_query(request, StreamQuery, repeated=READING_REPEATED)
    user, selection = caller(request), selection_of(query)
    readings = request.app[READINGS]
    fields = await readings.fields(user, selection, query.layer)
    after = _last_event_id(request)
    hub = request.app[HUB]
    if not hub.can_open(user.user_id):
        raise ProblemError(429, "too_many_streams", "Close a live stream before opening another.")
    watch = hub.watch(
        lambda: readings.fields(user, selection, query.layer),
        expires_at=datetime.fromtimestamp(user.claims.expires_at, UTC),
    )
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
            reason = await _serve(stream, watch, fields, hub.keepalive, response)
            if reason is not None:
                data = orjson.dumps({"reason": reason})
                await response.write(b"event: end\ndata: %s\n\n" % data)
    finally:
        hub.close(stream)
    return response


async def _serve(
    stream: Stream,
    watch: Watch,
    fields: tuple[str, ...],
    keepalive: float,
    response: web.StreamResponse,
) -> str | None:
    """Writes the stream's events (a keep-alive comment for each idle `keepalive` seconds),
    re-checking access every `watch.interval` seconds and at the token's expiry. Returns why
    access ended, or None when the stream was closed (cut off, shutdown)."""
    loop = asyncio.get_running_loop()
    next_check = loop.time() + watch.interval
    last_write = loop.time()
    while True:
        now = loop.time()
        check_at = min(next_check, now + watch.seconds_left())
        if now >= check_at:
            try:
                fields = await watch.fields()
            except StreamEnded as ended:
                return ended.reason
            next_check = loop.time() + watch.interval
            continue
        try:
            event = await asyncio.wait_for(
                stream.queue.get(), min(check_at, last_write + keepalive) - now
            )
        except TimeoutError:
            if loop.time() >= last_write + keepalive:
                await response.write(b": keep-alive\n\n")
                last_write = loop.time()
            continue
        if event is CLOSED:
            return None
        await response.write(_encoded(event, fields))
        last_write = loop.time()


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
