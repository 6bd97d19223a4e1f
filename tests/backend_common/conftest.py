"""Fixtures of the token-verification tests (signing keys and a verifier on a fake JWKS) and
of the logging tests (the lines written)."""

from typing import Any

import pytest

from backend_common.auth import TokenVerifier
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
