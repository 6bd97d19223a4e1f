"""What the token-verification tests share: claims they expect, a fake JWKS fetcher and the
verifier's clocks, which move only when the test says."""

import uuid
from dataclasses import dataclass
from typing import Any

from tests.plugins.people import FakeClock
from tests.tokens import SigningKey, jwks

ISSUER = "etp-auth"
AUDIENCE = "etp"
LEEWAY = 30
USER_ID = uuid.UUID("6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b")
JWKS_PATH = "/auth/.well-known/jwks.json"


@dataclass
class VerifierClock(FakeClock):
    """A TokenVerifier's time of day (`clock`, starting at the real time) and its monotonic
    seconds (`clock.monotonic`); `advance` moves both."""

    ticks: float = 0.0

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        self.ticks += seconds

    @property
    def epoch(self) -> int:
        """The time of day in whole seconds since 1970, as JWT claims count it."""
        return int(self.now.timestamp())


class FakeJwks:
    """A JWKS fetcher publishing `keys` (tests change them), counting its calls."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.error: Exception | None = None
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return jwks(*self.keys)
