"""Log lines are written once per pass of the event loop, and at once outside a loop; the
access line, rendered without structlog, looks like any other."""

import asyncio
import io
import logging
import re

import structlog

from backend_common.logging import LineBuffer, log_access


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_lines_of_one_loop_pass_go_out_in_one_write():
    stream = CountingStream()
    lines = LineBuffer(stream)

    lines.add("first")
    lines.add("second")
    assert stream.getvalue() == ""
    await asyncio.sleep(0)
    lines.add("third")
    await asyncio.sleep(0)

    assert stream.getvalue() == "first\nsecond\nthird\n"
    assert stream.writes == 2


def test_line_outside_a_loop_goes_out_at_once_after_the_waiting_ones():
    stream = CountingStream()
    lines = LineBuffer(stream)
    loop = asyncio.new_event_loop()

    def log_and_stop() -> None:
        lines.add("in a loop stopped before its flush")
        loop.stop()

    loop.call_soon(log_and_stop)
    loop.run_forever()
    loop.close()
    assert stream.getvalue() == ""
    lines.add("after the loop")

    assert stream.getvalue() == "in a loop stopped before its flush\nafter the loop\n"


def test_line_in_a_new_loop_is_not_held_up_by_a_stopped_one():
    stream = CountingStream()
    lines = LineBuffer(stream)
    old = asyncio.new_event_loop()
    old.call_soon(lambda: (lines.add("old"), old.stop()))
    old.run_forever()
    old.close()

    async def log_in_new_loop() -> None:
        lines.add("new")
        await asyncio.sleep(0)
        assert stream.getvalue() == "old\nnew\n"

    asyncio.run(log_in_new_loop())


def test_flush_writes_what_waits():
    stream = CountingStream()
    lines = LineBuffer(stream)

    async def log() -> None:
        lines.add("waiting")
        lines.flush()
        assert stream.getvalue() == "waiting\n"

    asyncio.run(log())
    assert stream.writes == 1


def test_access_line_has_the_keys_of_a_structlog_line(log_lines):
    fields = {"method": "GET", "path": "/api/v1/runs", "status": 200, "remote": "127.0.0.1"}
    tokens = structlog.contextvars.bind_contextvars(request_id="req-1")
    try:
        structlog.get_logger("access").info("request", **fields)
        log_access(logging.INFO, **fields)
        log_access(logging.DEBUG, **fields)  # below the level: dropped
    finally:
        structlog.contextvars.reset_contextvars(**tokens)

    by_structlog, direct = log_lines()
    assert list(direct) == list(by_structlog)
    assert {k: v for k, v in direct.items() if k != "timestamp"} == {
        k: v for k, v in by_structlog.items() if k != "timestamp"
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", direct["timestamp"])
    assert direct["timestamp"] >= by_structlog["timestamp"]
