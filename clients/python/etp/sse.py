"""Server-sent events from the API's live streams (`text/event-stream`), read with the client."""

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from etp.client import Client, Params
from etp.errors import ApiError, EtpError, ExitCode, is_transient

# Keep-alives come every 15 s (STREAM_KEEPALIVE_SECONDS): a longer silence is a dead connection.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=45.0)


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


def parse_events(lines: Iterator[str]) -> Iterator[Event]:
    """Events of an event stream's lines (comments and `retry:` skipped)."""
    name, last_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield Event(name, "\n".join(data), last_id)
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            last_id = value


class StreamEnded(EtpError):
    """The service ended the stream (`event: end`): the caller's access ended."""

    default_code = "stream_ended"
    default_exit_code = ExitCode.AUTH


def follow(
    client: Client,
    path: str,
    params: Params | None = None,
    *,
    reconnects: int = 10,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Event]:
    """The stream's events, reconnecting with `Last-Event-ID` after a drop (at most `reconnects`
    times in a row); `StreamEnded` on an `end` event."""
    last_id: str | None = None
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        try:
            with client.stream(
                "GET", path, params=params, headers=headers, timeout=STREAM_TIMEOUT
            ) as response:
                for event in parse_events(response.iter_lines()):
                    failures = 0
                    if event.id is not None:
                        last_id = event.id
                    if event.event == "end":
                        reason = event.json().get("reason", "ended")
                        raise StreamEnded(f"the service ended the stream: {reason}")
                    yield event
        except (httpx.TransportError, ApiError) as exc:
            if isinstance(exc, ApiError) and not is_transient(exc):
                raise
            failures += 1
            if failures > reconnects:
                raise ApiError(None, "unreachable", f"the stream broke off: {exc}") from exc
            sleep(min(5.0, 0.5 * 2 ** (failures - 1)))
            continue
        # The service closed the stream (a slow reader is cut off): reconnect at once.
