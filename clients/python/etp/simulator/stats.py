"""What a simulator run did: counters while it runs, the progress line, and the summary."""

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SensorTally:
    name: str
    sensor_id: str
    points_sent: int = 0
    points_accepted: int = 0
    points_rejected: int = 0
    points_failed: int = 0
    refused: str | None = None  # why the service stopped taking this sensor's batches


@dataclass
class Stats:
    """Points count readings; a batch sent again (a retry, a duplicate resend) is sent once."""

    batches_sent: int = 0
    points_sent: int = 0
    points_accepted: int = 0  # stored (or spooled) by this run's batches, duplicates not counted
    points_late: int = 0  # stored and marked late by the service
    points_spooled: int = 0
    duplicate_answers: int = 0  # batches the service had stored before (same batch_id)
    retried: int = 0  # tries after the first one, after a 429, 503, 5xx or no answer
    rate_limited: int = 0  # 429 answers
    unavailable: int = 0  # 503 answers, other 5xx and failed connections
    points_rejected: int = 0  # refused for good (4xx other than 429)
    points_failed: int = 0  # given up after the last retry
    points_unsent: int = 0  # held back when the run was aborted
    # The longest a batch waited to be sent after it was due (its measurement, or its
    # lateness): above a batch interval, the simulator (or the service) is not keeping up.
    send_lag_max: float = 0.0
    rejections: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    _window: deque[tuple[float, int]] = field(default_factory=deque)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self, window: float = 3.0) -> float:
        """Accepted points a second over the last `window` seconds (for the progress line)."""
        now = time.monotonic()
        self._window.append((now, self.points_accepted))
        while len(self._window) > 1 and self._window[0][0] < now - window:
            self._window.popleft()
        then, accepted = self._window[0]
        if now - then < 0.2:
            return self.points_accepted / max(self.elapsed(), 1e-9)
        return (self.points_accepted - accepted) / (now - then)

    def line(self, late_held: int = 0) -> str:
        rejected = self.points_rejected + self.points_failed
        parts = [
            f"{self.elapsed():6.1f}s",
            f"sent {self.points_sent:,}",
            f"accepted {self.points_accepted:,}",
            f"late {self.points_late:,}",
            f"retried {self.retried:,}",
        ]
        if self.duplicate_answers:
            parts.append(f"dup {self.duplicate_answers:,}")
        if late_held:
            parts.append(f"held {late_held:,}")
        if rejected:
            parts.append(f"rejected {rejected:,}")
        parts.append(f"{self.rate():,.0f} points/s")
        return "  ".join(parts)


@dataclass(frozen=True)
class Summary:
    seconds: float
    stats: Stats
    sensors: list[SensorTally]
    faults: dict[str, Any]
    stopped_by: str  # "duration", "interrupt", "refused"

    @property
    def points_per_second(self) -> float:
        return self.stats.points_accepted / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        s = self.stats
        return not (s.points_rejected or s.points_failed or any(t.refused for t in self.sensors))

    def as_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "seconds": round(self.seconds, 3),
            "stopped_by": self.stopped_by,
            "batches_sent": s.batches_sent,
            "points_sent": s.points_sent,
            "points_accepted": s.points_accepted,
            "points_late": s.points_late,
            "points_spooled": s.points_spooled,
            "points_rejected": s.points_rejected,
            "points_failed": s.points_failed,
            "points_unsent": s.points_unsent,
            "duplicate_answers": s.duplicate_answers,
            "retried": s.retried,
            "rate_limited": s.rate_limited,
            "unavailable": s.unavailable,
            "rejections": dict(s.rejections),
            "points_per_second": round(self.points_per_second, 1),
            "send_lag_max": round(s.send_lag_max, 3),
            "faults": self.faults,
            "sensors": [tally.__dict__ for tally in self.sensors],
        }

    def text(self) -> str:
        s = self.stats
        lines = [
            f"Simulated {len(self.sensors)} sensor(s) for {self.seconds:.1f} s "
            f"(stopped by {self.stopped_by}).",
            f"  sent      {s.points_sent:,} points in {s.batches_sent:,} batches",
            f"  accepted  {s.points_accepted:,} points ({self.points_per_second:,.0f} points/s)"
            + (f", {s.points_spooled:,} spooled" if s.points_spooled else ""),
            f"  late      {s.points_late:,} points marked late by the service",
            f"  retried   {s.retried:,} times ({s.rate_limited:,} x 429, "
            f"{s.unavailable:,} x 503/5xx/no answer)",
        ]
        if s.duplicate_answers:
            lines.append(f"  duplicate {s.duplicate_answers:,} resent batches stored once")
        if s.points_rejected or s.points_failed or s.points_unsent:
            codes = ", ".join(f"{code} x {n}" for code, n in s.rejections.most_common())
            lines.append(
                f"  lost      {s.points_rejected:,} rejected ({codes or 'none'}), "
                f"{s.points_failed:,} given up after retries, {s.points_unsent:,} unsent"
            )
        injected = {name: value for name, value in self.faults.items() if value}
        if injected:
            lines.append(
                "  faults    " + ", ".join(f"{name} {value}" for name, value in injected.items())
            )
        for tally in self.sensors:
            if tally.refused:
                lines.append(f"  {tally.name}: refused ({tally.refused})")
        return "\n".join(lines)


class ProgressLine:
    """The live line on a terminal (rewritten in place), or a line every `every` seconds when
    the stream is a file or a pipe (a CI log)."""

    def __init__(self, stream: Any, *, every: float = 10.0) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = 0.5 if self._tty else every

    def show(self, text: str) -> None:
        self._stream.write(f"\r\x1b[K{text}" if self._tty else f"{text}\n")
        self._stream.flush()

    def clear(self) -> None:
        if self._tty:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
