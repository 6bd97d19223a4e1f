"""What the token-verification tests share: claims they expect and a fake JWKS fetcher."""

import uuid
from typing import Any

from tests.tokens import SigningKey, jwks

ISSUER = "etp-auth"
AUDIENCE = "etp"
LEEWAY = 30
USER_ID = uuid.UUID("6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b")
JWKS_PATH = "/auth/.well-known/jwks.json"


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
