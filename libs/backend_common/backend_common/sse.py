"""Serving a live stream (`backend_common.live`) as server-sent events.

    after = last_event_id(request)
    refuse_too_many(hub, user_id)
    stream = hub.open(filter, user_id=user_id, after=after)
    return await serve(request, hub, stream, watch, view, encode)

The response opens with `retry: 2000`; each event is what `encode(event, view)` gives (an `id:`
line carrying the batch id, so a client reconnects with `Last-Event-ID`); an idle stream gets a
keep-alive comment every `hub.keepalive` seconds; when access ends while it runs, a last
`event: end` says why (`{"reason": …}`) and the response ends.
"""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.live import CLOSED, Filter, Hub, Stream, StreamEnded, Watch

V = TypeVar("V")
F = TypeVar("F", bound=Filter)

Encode = Callable[[dict[str, Any], V], bytes]


def last_event_id(request: web.Request) -> int | None:
    """The `Last-Event-ID` a reconnecting client sends (an id we sent), or None."""
    value = request.headers.get("Last-Event-ID")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ProblemError(400, "invalid_last_event_id", "Last-Event-ID is an event id we sent.")
    return int(value)


def refuse_too_many(hub: Hub[Any], user_id: Any) -> None:
    """429 when the user holds as many streams as one may in this process."""
    if not hub.can_open(user_id):
        raise ProblemError(429, "too_many_streams", "Close a live stream before opening another.")


async def serve(
    request: web.Request,
    hub: Hub[F],
    stream: Stream[F],
    watch: Watch[V],
    view: V,
    encode: Encode[V],
) -> web.StreamResponse:
    """Writes the stream's events until it ends (cut off, shutdown, access ended, client gone);
    the stream is closed however that happens."""
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
            reason = await _events(stream, watch, view, encode, hub.keepalive, response)
            if reason is not None:
                data = orjson.dumps({"reason": reason})
                await response.write(b"event: end\ndata: %s\n\n" % data)
    finally:
        hub.close(stream)
    return response


async def _events(
    stream: Stream[Any],
    watch: Watch[V],
    view: V,
    encode: Encode[V],
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
                view = await watch.view()
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
        await response.write(encode(event, view))
        last_write = loop.time()
