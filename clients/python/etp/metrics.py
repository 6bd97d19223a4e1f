"""Run metrics: points as the API takes them, and a batcher that sends them from a background
thread (docs/metrics.md: `POST /api/v1/runs/{id}/metrics`, at most 10,000 points a batch).

The batcher sends batches in the order the points came, each with its own `batch_id`, and sends a
batch again, with the same `batch_id`, after a 429, a 5xx or a lost connection until
`retry_for` seconds have passed: the service stores a batch id once per run, so a batch whose
answer was lost is never stored twice, and a brief outage loses nothing. A refusal (4xx) stops the
batcher: the error is raised by the next `add`, `flush` or `close`.
"""

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from etp.client import Client
from etp.errors import ApiError, EtpError, UsageError, is_transient

MAX_POINTS = 10_000  # EXPERIMENT_METRICS_MAX_POINTS
Point = dict[str, Any]


def metric_value(value: Any) -> float | str:
    """A value as the API takes it: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`."""
    if isinstance(value, bool):
        raise UsageError(f"a metric value must be a number, not {value!r}")
    if not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"a metric value must be a number, not {value!r}") from None
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return int(value) if isinstance(value, int) and abs(value) < 2**53 else number


def metric_point(
    name: str, value: Any, *, step: int | None = None, timestamp: datetime | str | None = None
) -> Point:
    """One point; a missing step is the next of that name (the service fills it in)."""
    if not isinstance(name, str) or not 1 <= len(name) <= 250:
        raise UsageError(f"a metric name has 1-250 characters, not {name!r}")
    point: Point = {"name": name, "value": metric_value(value)}
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int):
            raise UsageError(f"a step is an integer, not {step!r}")
        point["step"] = step
    if timestamp is not None:
        if isinstance(timestamp, datetime):
            when = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
            timestamp = when.isoformat()
        point["timestamp"] = timestamp
    return point


@dataclass
class MetricStats:
    batches: int = 0
    accepted: int = 0
    late: int = 0
    duplicates: int = 0  # batches the service had already stored (a resend after a lost answer)
    retries: int = 0


class MetricBatcher:
    """Collects points and sends them from a daemon thread: when `max_points` are waiting, when
    the oldest has waited `flush_seconds`, and on `flush`/`close`."""

    def __init__(
        self,
        client: Client,
        run_id: str,
        *,
        max_points: int = MAX_POINTS,
        flush_seconds: float = 1.0,
        retry_for: float = 600.0,
        max_backoff: float = 5.0,
        max_pending: int = 1_000_000,
        on_sent: Callable[[int, dict[str, Any]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= max_points <= MAX_POINTS:
            raise UsageError(f"a batch holds 1-{MAX_POINTS} points")
        self._client = client
        self._path = f"/api/v1/runs/{run_id}/metrics"
        self._max_points = max_points
        self._flush_seconds = flush_seconds
        self._retry_for = retry_for
        self._max_backoff = max_backoff
        self._max_pending = max(max_pending, max_points)
        self._on_sent = on_sent
        self._sleep = sleep
        self._prefix = uuid.uuid4().hex[:16]
        self._sequence = 0
        self._pending: deque[Point] = deque()
        self._oldest = 0.0
        self._added = 0  # points added so far
        self._done = 0  # points sent (or dropped after a failure) so far
        self._flush_to = 0  # send everything added before this count without waiting
        self._closing = False
        self._error: EtpError | None = None
        self._cond = threading.Condition()
        self.stats = MetricStats()
        self._thread = threading.Thread(target=self._run, name="etp-metrics", daemon=True)
        self._thread.start()

    @property
    def error(self) -> EtpError | None:
        return self._error

    def add(self, point: Point) -> None:
        """Queues a point; waits while `max_pending` points are waiting (a long outage)."""
        with self._cond:
            self._raise_error()
            if self._closing:
                raise UsageError("the metrics of this run are closed")
            while len(self._pending) >= self._max_pending and self._error is None:
                self._cond.wait(0.5)
            self._raise_error()
            first = not self._pending
            if first:
                self._oldest = time.monotonic()
            self._pending.append(point)
            self._added += 1
            if first or len(self._pending) >= self._max_points:
                self._cond.notify_all()  # the thread starts the clock, or sends a full batch

    def flush(self, timeout: float | None = None) -> None:
        """Waits until every point added so far is stored; raises the batcher's error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._added
            self._flush_to = max(self._flush_to, target)
            self._cond.notify_all()
            while self._done < target and self._error is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise EtpError(
                        f"{target - self._done} metric points not sent within {timeout:g} s",
                        code="flush_timeout",
                    )
                self._cond.wait(left if left is not None else 1.0)
            self._raise_error()

    def close(self, timeout: float | None = None) -> None:
        """Flushes, then stops the thread."""
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(timeout=5)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the thread --------------------------------------------------------------------------

    def _next_batch(self) -> list[Point] | None:
        with self._cond:
            while True:
                if self._error is not None or (self._closing and not self._pending):
                    return None
                if self._pending:
                    due = (
                        len(self._pending) >= self._max_points
                        or self._flush_to > self._done  # a flush waits for the oldest points
                        or self._closing
                    )
                    wait = self._oldest + self._flush_seconds - time.monotonic()
                    if due or wait <= 0:
                        count = min(self._max_points, len(self._pending))
                        batch = [self._pending.popleft() for _ in range(count)]
                        self._oldest = time.monotonic()
                        self._cond.notify_all()  # room for a waiting add
                        return batch
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._send(batch)
            except EtpError as exc:
                error = exc
            except Exception as exc:  # the thread must not die silently
                error = EtpError(f"metrics could not be sent: {exc!r}", code="metrics_failed")
            else:
                with self._cond:
                    self._done += len(batch)
                    self._cond.notify_all()
                continue
            with self._cond:
                self._error = error
                self._done = self._added
                self._pending.clear()
                self._cond.notify_all()
            return

    def _send(self, batch: list[Point]) -> None:
        self._sequence += 1
        body = {"batch_id": f"etp-{self._prefix}-{self._sequence}", "metrics": batch}
        deadline = time.monotonic() + self._retry_for
        attempt = 0
        while True:
            try:
                answer: dict[str, Any] = self._client.post(self._path, body)
                break
            except ApiError as exc:
                if not is_transient(exc) or time.monotonic() >= deadline:
                    raise
                wait = exc.retry_after
                if wait is None or wait > self._max_backoff:
                    wait = min(self._max_backoff, 0.25 * 2**attempt)
                attempt += 1
                self.stats.retries += 1
                self._sleep(wait)
        self.stats.batches += 1
        # A duplicate is our resend of a batch whose first answer was lost: its counts (the first
        # copy's) were never counted here.
        self.stats.duplicates += bool(answer.get("duplicate"))
        self.stats.accepted += int(answer.get("accepted", 0))
        self.stats.late += int(answer.get("late", 0))
        if self._on_sent is not None:
            self._on_sent(len(batch), answer)
