import asyncio
import atexit
import logging
import sys
import threading
import time
from typing import Any, TextIO

import orjson
import structlog
from opentelemetry import trace


def _add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event["trace_id"] = format(span_context.trace_id, "032x")
        event["span_id"] = format(span_context.span_id, "016x")
    return event


def _orjson_dumps(event: dict[str, Any], **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


class LineBuffer:
    """Log lines written once per pass of the event loop: under load one write carries the lines
    of many requests rather than each line costing a system call. Outside a running loop (start-up,
    shutdown, other threads) a line goes out at once, with any still waiting before it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._lock = threading.Lock()
        # The loop a flush is scheduled on; a loop closed before it ran leaves a stale entry,
        # and the next line schedules on its own loop.
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    def add(self, line: str) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._lines.append(line)
            schedule = loop is not None and self._flush_loop is not loop
            if schedule:
                self._flush_loop = loop
        if loop is None:
            self.flush()
        elif schedule:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self._lock:
            lines, self._lines, self._flush_loop = self._lines, [], None
            if lines:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()


class _BufferedLogger:
    """structlog's logger: the rendered line of every level goes to the buffer."""

    def __init__(self, lines: LineBuffer) -> None:
        self._lines = lines

    def msg(self, message: str) -> None:
        self._lines.add(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _BufferedHandler(logging.Handler):
    """The libraries' stdlib records, rendered like ours and in order with them."""

    def __init__(self, lines: LineBuffer) -> None:
        super().__init__()
        self._lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.add(self.format(record))
        except Exception:
            self.handleError(record)


def _utc_timestamp() -> str:
    """Now as structlog's TimeStamper(fmt="iso", utc=True) writes it, the part up to the second
    formatted once a second."""
    global _second, _second_text
    now = time.time()
    second = int(now)
    if second != _second:
        _second = second
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_second_text}.{int((now - second) * 1_000_000):06d}Z"


_second, _second_text = -1, ""
_lines: LineBuffer | None = None
_json_level: int | None = None  # the level below which lines are dropped, in JSON format only
_access = structlog.get_logger("access")


def log_access(level: int, **fields: Any) -> None:
    """The access line, the one line every request writes. In JSON it skips structlog's
    machinery (most of a line's cost) and renders the keys structlog's processors would add
    straight to the line buffer; in console format it is an ordinary structlog line."""
    if _json_level is None or _lines is None:
        _access.log(level, "request", **fields)
        return
    if level < _json_level:
        return
    fields["event"] = "request"
    fields.update(structlog.contextvars.get_contextvars())
    fields["level"] = logging.getLevelName(level).lower()
    fields["timestamp"] = _utc_timestamp()
    _lines.add(_orjson_dumps(_add_trace_ids(None, "", fields)))


@atexit.register
def flush_logs() -> None:
    """Writes the lines still waiting for their loop pass (tests call it before reading)."""
    if _lines is not None:
        _lines.flush()


def configure_logging(
    *, service: str, level: str = "info", fmt: str = "json", stream: TextIO | None = None
) -> None:
    """JSON lines on stdout (or `stream`) for our logs and for the stdlib loggers of libraries."""
    global _lines, _json_level
    stream = sys.stdout if stream is None else stream
    flush_logs()
    _lines = lines = LineBuffer(stream)
    _json_level = logging.getLevelName(level.upper()) if fmt == "json" else None
    logger = _BufferedLogger(lines)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    # Our own lines skip the stdlib logging machinery (it cost a sixth of a proxied request's
    # CPU); the libraries' stdlib records are rendered the same way by the handler below.
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=lambda *_: logger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = _BufferedHandler(lines)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=service)
