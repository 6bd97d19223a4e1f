"""How often the credential routes may be tried: per client address, and per login name.

An attacker's wrong guesses must not lock the real user out, so the allowance of a login name
(username or email, as typed) applies only to attempts from addresses that login has not succeeded
from within `known_address_ttl`: the real user, at an address they logged in from before, keeps
only their address's own allowance while a guesser elsewhere is refused.

The counts live in this process (docs/security.md says what that means with several workers and
after a restart). An attempt whose client address is unknown (a trusted proxy's own call, naming
no client) is not counted per address: that proxy throttles its clients itself.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from auth_service.domain.errors import Throttled
from backend_common.ratelimit import TokenBuckets

MAX_KNOWN_ADDRESSES = 100_000


@dataclass(frozen=True)
class ThrottleLimits:
    address_rate: float
    address_burst: int
    login_rate: float
    login_burst: int
    known_address_ttl: float
    reset_rate: float
    reset_burst: int


class CredentialThrottle:
    def __init__(
        self, limits: ThrottleLimits, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._monotonic = monotonic
        self._known_ttl = limits.known_address_ttl
        self._by_address = TokenBuckets(
            rate=limits.address_rate, burst=limits.address_burst, name="auth_credentials_address"
        )
        self._by_login = TokenBuckets(
            rate=limits.login_rate, burst=limits.login_burst, name="auth_login_name"
        )
        self._by_reset_email = TokenBuckets(
            rate=limits.reset_rate, burst=limits.reset_burst, name="auth_reset_email"
        )
        # (login, address) → when the login last succeeded from there; oldest first.
        self._known: dict[tuple[str, str], float] = {}

    def attempt(self, address: str | None) -> None:
        """One try of a credential route from `address`, or Throttled."""
        if address is not None:
            self._take(self._by_address, address)

    def login_attempt(self, login: str, address: str | None) -> None:
        self.attempt(address)
        if not self._is_known(login, address):
            self._take(self._by_login, login.lower())

    def reset_request(self, email: str, address: str | None) -> None:
        """A password reset asked for `email`: each sends a mail, so few per address asked for."""
        self.attempt(address)
        self._take(self._by_reset_email, email.lower())

    def login_succeeded(self, login: str, address: str | None) -> None:
        if address is None:
            return
        key = (login.lower(), address)
        self._known.pop(key, None)
        self._known[key] = self._monotonic()
        if len(self._known) > MAX_KNOWN_ADDRESSES:
            del self._known[next(iter(self._known))]

    def _is_known(self, login: str, address: str | None) -> bool:
        if address is None:
            return False
        since = self._known.get((login.lower(), address))
        return since is not None and self._monotonic() - since < self._known_ttl

    def _take(self, buckets: TokenBuckets, key: str) -> None:
        decision = buckets.take(key, now=self._monotonic())
        if not decision.allowed:
            raise Throttled(decision)


class KeyFailures:
    """Refused API keys per client address. Only refusals spend the allowance, and once it is
    spent keys from that address are not even checked until it refills: each guess at a key
    costs a request, and past the burst only `rate` of them a second are answered."""

    def __init__(
        self, *, rate: float, burst: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._monotonic = monotonic
        self._by_address = TokenBuckets(rate=rate, burst=burst, name="auth_api_key_failures")

    def check(self, address: str | None) -> None:
        """Throttled when `address` has no refusal left (an unknown address is not counted)."""
        if address is None:
            return
        decision = self._by_address.peek(address, now=self._monotonic())
        if not decision.allowed:
            raise Throttled(decision)

    def refused(self, address: str | None) -> None:
        if address is not None:
            self._by_address.take(address, now=self._monotonic(), refusing=False)
