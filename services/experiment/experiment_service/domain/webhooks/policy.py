"""Webhook rules without I/O: the event types, what an answer means, when to try again."""

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

# Every event a subscription may ask for; `*` asks for all of them.
EVENT_TYPES = (
    "run.created",
    "run.started",
    "run.finished",
    "run.failed",
    "run.archived",
    "run.tags_updated",
    "capture_session.started",
    "capture_session.stopped",
    "experiment.archived",
    "sensor.created",
    "sensor.token_rotated",
    "sensor.offline",
    "sensor.online",
    "conversion_profile.activated",
    "capture.backfill.finished",
    "artifact.created",
    "artifact.approved",
)
ALL_EVENTS = "*"
# Sent only by `POST /api/v1/webhooks/{id}/ping`, to that subscription, whatever it asked for.
PING = "webhook.ping"

# Retry n waits BACKOFF_FACTOR^(n-1) times the base; each wait is scaled by a random factor in
# [1 - JITTER, 1 + JITTER] so that receivers that failed together are not retried together. With
# a factor of 3 and 25 % jitter every wait is still longer than the one before (until the cap).
BACKOFF_FACTOR = 3.0
JITTER = 0.25
# Longer Retry-After numbers are not read (they would overflow `timedelta`): they mean "long".
MAX_SECONDS_DIGITS = 10


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"


def backoff(retry: int, *, base: float, cap: float, rng: random.Random | None = None) -> timedelta:
    """The wait before retry number `retry` (1 for the retry after the first try)."""
    nominal = min(cap, base * BACKOFF_FACTOR ** (retry - 1))
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return timedelta(seconds=min(cap, nominal * spread))


def retry_after(header: str | None, now: datetime, *, longest: timedelta) -> timedelta | None:
    """Retry-After as seconds or an HTTP date, at most `longest`; None when absent, unreadable
    or in the past. The receiver writes it, so nothing it may hold raises: a number too long
    for `timedelta` (or for `int`) is simply long, a digit that is not ASCII (`²`) unreadable."""
    if header is None:
        return None
    header = header.strip()
    if header.isascii() and header.isdigit():
        if len(header) > MAX_SECONDS_DIGITS:
            return longest
        wait = timedelta(seconds=int(header))
    else:
        try:
            when = parsedate_to_datetime(header)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            wait = when - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if wait < timedelta(0):
        return None
    return min(wait, longest)


@dataclass(frozen=True)
class Outcome:
    """What one try's answer means for the delivery."""

    delivered: bool = False
    retry: bool = False
    disable_subscription: bool = False


def judge(status: int | None) -> Outcome:
    """2xx delivered; 410 Gone turns the subscription off; anything else (a redirect, which is
    not followed, another 4xx, a 5xx, a timeout or a network error: `status` None) is a failure
    to try again."""
    if status is not None and 200 <= status < 300:
        return Outcome(delivered=True)
    if status == 410:
        return Outcome(disable_subscription=True)
    return Outcome(retry=True)


def next_try(
    *,
    attempts: int,
    max_attempts: int,
    now: datetime,
    base: float,
    cap: float,
    retry_after_wait: timedelta | None = None,
) -> datetime | None:
    """When to try again after failed try number `attempts`, or None: the delivery is dead."""
    if attempts >= max_attempts:
        return None
    wait = backoff(attempts, base=base, cap=cap)
    if retry_after_wait is not None:
        wait = max(wait, retry_after_wait)
    return now + wait
