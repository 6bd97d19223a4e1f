"""What to simulate: each sensor's identity, signal, pace and faults, as plain frozen values."""

import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from etp.simulator.waveforms import Shape

# The ingest service takes at most this many readings in one batch (MAX_BATCH_READINGS).
MAX_BATCH_READINGS = 10_000

_TOKEN = re.compile(r"^etps_(?P<sensor>[0-9a-f]{32})_\S+$")


def sensor_id_of(token: str) -> uuid.UUID:
    """The sensor a token belongs to: ETP sensor tokens read `etps_<sensor id, 32 hex>_<secret>`."""
    match = _TOKEN.match(token.strip())
    if match is None:
        raise ValueError("not an ETP sensor token (etps_<sensor id>_<secret>)")
    return uuid.UUID(match["sensor"])


@dataclass(frozen=True)
class Faults:
    """Faults injected on purpose. Fractions are per batch (0 never, 1 always), drawn from the
    sensor's seeded generator; times are seconds."""

    # Silent for `dropout_for` seconds after every `dropout_every` seconds of measuring.
    dropout_every: float = 0.0
    dropout_for: float = 0.0
    # Batches held back and sent `late_by` after they were measured.
    late: float = 0.0
    late_by: float = 120.0
    # Batches sent a second time with the same batch_id.
    duplicate: float = 0.0
    # Batches sent after the batch that follows them.
    out_of_order: float = 0.0
    # The device clock gains this many seconds per minute (negative: loses), from an error of
    # `clock_offset` seconds at the start.
    drift: float = 0.0
    clock_offset: float = 0.0

    def __post_init__(self) -> None:
        for name in ("late", "duplicate", "out_of_order"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a fraction of batches, from 0 to 1")
        for name in ("dropout_every", "dropout_for", "late_by"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must not be negative")
        if self.dropout_for > 0 and self.dropout_every <= 0:
            raise ValueError("a dropout needs dropout_every (seconds of measuring between them)")
        for name in ("drift", "clock_offset"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number")
        if not self.drift > -60.0:
            raise ValueError("a clock cannot lose a minute or more per minute")

    @property
    def any(self) -> bool:
        return self != Faults()


@dataclass(frozen=True)
class SensorPlan:
    """One simulated sensor. `rate` counts ticks per second; each tick is one reading, or one
    per channel of a multi-channel sensor (`meta.signal`); `batch_size` counts readings."""

    sensor_id: uuid.UUID
    token: str
    name: str = "sensor"
    shape: Shape = field(default_factory=Shape)
    rate: float = 10.0
    batch_size: int = 10
    channels: tuple[str, ...] = ()
    faults: Faults = field(default_factory=Faults)
    # Given, batches name them (a batch measured during a capture keeps its session even when
    # it arrives after the session stopped, and is then stored as late).
    run_id: uuid.UUID | None = None
    capture_session_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError("the rate (readings a second) must be positive")
        if not 1 <= self.batch_size <= MAX_BATCH_READINGS:
            raise ValueError(f"the batch size must be from 1 to {MAX_BATCH_READINGS}")
        if len(set(self.channels)) != len(self.channels) or not all(
            1 <= len(channel) <= 64 for channel in self.channels
        ):
            raise ValueError("channels must be distinct names of 1 to 64 characters")

    @property
    def ticks_per_batch(self) -> int:
        """A tick's readings (one per channel) always travel in one batch."""
        return max(1, self.batch_size // max(1, len(self.channels)))


_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90s`, `250ms`, `5m`, `1.5h`, `2d` (a leading `-` for the past)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (e.g. 30s, 5m, 1h)")
    return float(match[1]) * _UNITS[match[2]]


def parse_start(text: str, now: float) -> float:
    """An instant as epoch seconds: `now`, a duration before now (`-10m`), or RFC 3339."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("-"):
        return now + parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a start: {text!r} (now, -10m, or 2026-01-01T12:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
