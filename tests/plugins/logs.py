"""The services' log lines as a test reads them: `log_lines()` parses what was logged so far."""

import io
import logging

import orjson
import pytest
import structlog

from backend_common import logging as backend_logging
from backend_common.logging import configure_logging, flush_logs


@pytest.fixture
def log_lines(monkeypatch):
    """configure_logging into a buffer; the logging and structlog setup come back afterwards."""
    # The module's own buffer and level too (monkeypatch puts the present ones back).
    monkeypatch.setattr(backend_logging, "_lines", backend_logging._lines)
    monkeypatch.setattr(backend_logging, "_json_level", backend_logging._json_level)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog_config = structlog.get_config()
    stream = io.StringIO()
    configure_logging(service="gateway", stream=stream)
    ours = root.handlers[0]
    # pytest adds and removes its own capture handlers around each phase: keep them beside ours.
    root.handlers[:] = [*handlers, ours]
    # Module loggers cached on first use would keep this test's configuration after it.
    structlog.configure(cache_logger_on_first_use=False)

    def lines() -> list[dict]:
        flush_logs()
        return [orjson.loads(line) for line in stream.getvalue().splitlines()]

    yield lines

    root.removeHandler(ours)
    root.setLevel(level)
    structlog.configure(**structlog_config)
    structlog.contextvars.unbind_contextvars("service")
