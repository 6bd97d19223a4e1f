"""Reading server-sent events in tests: the blocks and `readings` events of an open
text/event-stream response (the `streams` fixture of conftest.py opens them)."""

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

STREAM = "/api/v1/telemetry/stream"
WAIT = 5.0  # seconds an expected event may take


@dataclass
class Block:
    """One block of lines up to a blank line: its fields and its comments."""

    fields: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)


@dataclass
class Event:
    id: int
    name: str
    data: dict[str, Any]

    @property
    def readings(self) -> list[dict[str, Any]]:
        return self.data["readings"]

    @property
    def raws(self) -> list[float]:
        return [item["raw_value"] for item in self.readings]


def add_line(block: Block, line: str) -> None:
    """One line of a block: a comment or a field (data lines joined)."""
    if line.startswith(":"):
        block.comments.append(line[1:].removeprefix(" "))
        return
    name, _, value = line.partition(":")
    value = value.removeprefix(" ")
    if name == "data" and "data" in block.fields:
        value = f"{block.fields['data']}\n{value}"
    block.fields[name] = value


def parse_block(lines: list[str]) -> Block:
    block = Block()
    for line in lines:
        if line:
            add_line(block, line)
    return block


def event_of(block: Block) -> Event:
    """The readings event a block holds, checked for its shape."""
    assert set(block.fields) == {"id", "event", "data"}, block
    event = Event(int(block.fields["id"]), block.fields["event"], json.loads(block.fields["data"]))
    assert event.name == "readings"
    assert set(event.data) == {"batch_id", "readings"}
    assert event.data["batch_id"] == event.id
    return event


class EventStream:
    """The events of an open text/event-stream response, read line by line."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []

    async def block(self, within: float = WAIT) -> Block | None:
        """The next block, or None when the response has ended."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        current = Block()
        while True:
            remaining = max(deadline - loop.time(), 0.001)
            line = await asyncio.wait_for(self.response.content.readline(), remaining)
            if not line:
                assert current == Block(), f"cut mid-block: {current}"
                return None
            text = line.decode().removesuffix("\n").removesuffix("\r")
            if not text:
                if current.fields or current.comments:
                    return current
                continue
            add_line(current, text)

    async def event(self, within: float = WAIT) -> Event | None:
        """The next event (keep-alive comments noted and skipped), None at the end."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            block = await self.block(max(deadline - loop.time(), 0.001))
            if block is None:
                return None
            self.comments.extend(block.comments)
            if "data" not in block.fields:
                continue
            return event_of(block)

    async def events(self, count: int, within: float = WAIT) -> list[Event]:
        got = []
        for _ in range(count):
            event = await self.event(within)
            assert event is not None, f"the stream ended after {got}"
            got.append(event)
        return got

    async def rest(self, within: float = WAIT) -> list[Event]:
        """Every event until the response ends, which it must within `within` seconds (read
        whole, as lines may be longer than a line read takes)."""
        text = (await asyncio.wait_for(self.response.content.read(), within)).decode()
        assert text == "" or text.endswith("\n\n"), f"cut mid-block: {text[-200:]!r}"
        got = []
        for chunk in text.split("\n\n"):
            block = parse_block(chunk.split("\n"))
            self.comments.extend(block.comments)
            if "data" in block.fields:
                got.append(event_of(block))
        return got

    async def quiet(self, within: float = 0.3) -> None:
        """Nothing but keep-alives arrives for `within` seconds."""
        try:
            event = await self.event(within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected event: {event}")


def query(sensors: Any = (), **params: Any) -> list[tuple[str, str]]:
    items = [("sensor_id", str(s["id"] if isinstance(s, dict) else s)) for s in sensors]
    return items + [(name, str(value)) for name, value in params.items()]


async def get_stream(
    client: Any,
    user: Any,
    params: list[tuple[str, str]],
    *,
    last_event_id: str | int | None = None,
    session: aiohttp.ClientSession | None = None,
) -> aiohttp.ClientResponse:
    headers = {} if user is None else dict(user.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    if session is not None:
        return await session.get(client.make_url(STREAM), params=params, headers=headers)
    return await client.get(STREAM, params=params, headers=headers)
