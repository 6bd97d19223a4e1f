import functools
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from backend_common import sse
from backend_common.http import parse_query
from backend_common.rbac import caller
from telemetry_ingest_service.api.readings import selection_of
from telemetry_ingest_service.appkeys import HUB, READINGS
from telemetry_ingest_service.domain.live import Filter, access_check
from telemetry_ingest_service.models import READING_REPEATED, StreamQuery

routes = web.RouteTableDef()


@routes.get("/api/v1/telemetry/stream", name="stream_telemetry")
async def stream_telemetry(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `readings` event per stored batch (with a reading on the channels
    asked for, `signal=`), its id the batch id; an `end` event with the reason when access ends
    while the stream runs."""
    query = parse_query(request, StreamQuery, repeated=READING_REPEATED)
    user, selection = caller(request), selection_of(query)
    readings = request.app[READINGS]
    fields = await readings.fields(user, selection, query.layer)
    after = sse.last_event_id(request)
    hub = request.app[HUB]
    sse.refuse_too_many(hub, user.user_id)
    watch = hub.watch(
        access_check(lambda: readings.fields(user, selection, query.layer)),
        expires_at=datetime.fromtimestamp(user.claims.expires_at, UTC),
    )
    stream = hub.open(
        Filter(frozenset(query.sensor_id), query.run_id, query.capture_session_id),
        user_id=user.user_id,
        after=after,
    )
    signals = tuple(sorted(set(query.signal)))
    return await sse.serve(
        request, hub, stream, watch, fields, functools.partial(_encoded, signals=signals)
    )


def _encoded(event: dict[str, Any], fields: tuple[str, ...], *, signals: tuple[str, ...]) -> bytes:
    """The event as SSE bytes with these reading fields and the readings of these channels
    (every one if none), encoded once per set of fields and channels whatever the number of
    streams; nothing for a batch with no reading on the channels."""
    key = "sse:" + ",".join(fields) + "|" + ",".join(signals)
    if key not in event:
        readings = [
            {name: reading[name] for name in fields}
            for reading in event["items"]
            if not signals or reading["signal"] in signals
        ]
        data = orjson.dumps(
            {"batch_id": event["id"], "readings": readings}, option=orjson.OPT_UTC_Z
        )
        event[key] = (
            b"id: %d\nevent: readings\ndata: %s\n\n" % (event["id"], data) if readings else b""
        )
    return event[key]
