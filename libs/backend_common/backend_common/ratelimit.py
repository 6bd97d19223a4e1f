"""In-process token buckets: `rate` tokens a second up to `burst`, one bucket per key.

A limit with a `name` counts the requests it refuses (etp_rate_limit_rejections_total{limit}).
"""

import math
import time
from typing import NamedTuple

from backend_common.errors import ProblemError
from backend_common.metrics import RATE_LIMIT_REJECTIONS


class Decision(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # whole seconds until a token is back (0 when allowed)
    reset: int  # whole seconds until the bucket is full again


class TokenBuckets:
    def __init__(self, *, rate: float, burst: int, max_keys: int = 100_000, name: str = "") -> None:
        self.rate = rate
        self.burst = burst
        self._rejections = RATE_LIMIT_REJECTIONS.labels(name) if name else None
        self._max_keys = max_keys
        # tokens and when, per key; a dict keeps insertion order, and a key taken from is
        # moved to the end, so the first key is the one unused longest.
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, *, now: float | None = None, refusing: bool = True) -> Decision:
        """A token for `key` if there is one. `refusing=False`: the caller spends the token
        whatever the decision, refusing nothing (it is not counted as a rejection)."""
        return self._counted(self._decide(key, now=now, take=True), refusing)

    def peek(self, key: str, *, now: float | None = None) -> Decision:
        """Whether `take` would be allowed now, without taking a token (for allowances spent
        only by failures, which must be checked before the attempt)."""
        if key not in self._buckets:
            return Decision(True, self.burst, self.burst, 0, 0)
        return self._counted(self._decide(key, now=now, take=False), True)

    def _counted(self, decision: Decision, refusing: bool) -> Decision:
        if not decision.allowed and refusing and self._rejections is not None:
            self._rejections.inc()
        return decision

    def _decide(self, key: str, *, now: float | None, take: bool) -> Decision:
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        if allowed and take:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_keys:
            del self._buckets[next(iter(self._buckets))]
        return Decision(
            allowed,
            self.burst,
            int(tokens),
            0 if allowed else math.ceil((1.0 - tokens) / self.rate),
            math.ceil((self.burst - tokens) / self.rate),
        )


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """RateLimit-Limit/-Remaining/-Reset (ratelimit-headers draft 06), and Retry-After when the
    decision refused."""
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after)
    return headers


def enforce(buckets: TokenBuckets, key: str) -> Decision:
    """Takes a token for `key`, or answers 429 with Retry-After."""
    decision = buckets.take(key)
    if not decision.allowed:
        raise ProblemError(
            429,
            "too_many_requests",
            f"Too many requests; retry in {decision.retry_after} s.",
            headers={"Retry-After": str(decision.retry_after)},
        )
    return decision
