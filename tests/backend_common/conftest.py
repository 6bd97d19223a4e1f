"""Fixtures of the token-verification tests (signing keys and a verifier on a fake JWKS) and
of the logging tests (the lines written)."""

import io
import logging
from typing import Any

import orjson
import pytest
import structlog

from backend_common import logging as backend_logging
from backend_common.auth import TokenVerifier
from backend_common.logging import configure_logging, flush_logs
from tests.backend_common.verifier_kit import AUDIENCE, ISSUER, LEEWAY, FakeJwks, VerifierClock
from tests.tokens import SigningKey


@pytest.fixture(scope="module")
def ed_key():
    return SigningKey.generate("ed-1", "EdDSA")


@pytest.fixture(scope="module")
def es_key():
    return SigningKey.generate("es-1", "ES256")


@pytest.fixture
def fetcher(ed_key, es_key):
    return FakeJwks(ed_key, es_key)


@pytest.fixture
def clock():
    """The verifiers' time: tests move it instead of sleeping."""
    return VerifierClock()


@pytest.fixture
def make_verifier(fetcher, clock):
    def make(fetch_jwks=fetcher, **overrides: Any) -> TokenVerifier:
        values: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "leeway": LEEWAY,
            "clock": clock,
            "monotonic": clock.monotonic,
        }
        return TokenVerifier(fetch_jwks=fetch_jwks, **(values | overrides))

    return make


@pytest.fixture
def verifier(make_verifier):
    return make_verifier()


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
