"""What a simulated sensor measures: a waveform in time, plus Gaussian noise.

Each waveform is a small stateful object asked for its value at increasing times (seconds since
the sensor started); the random ones (walk, bursts) draw from the sensor's own seeded generator,
so a run is repeatable with `--seed`.
"""

import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

WAVEFORMS = ("sine", "saw", "square", "walk", "bursts")


@dataclass(frozen=True)
class Shape:
    """The parameters every waveform reads: `offset + amplitude · f(t / period + phase)`."""

    kind: str = "sine"
    amplitude: float = 1.0
    period: float = 10.0  # seconds; for `bursts` the mean time between bursts
    offset: float = 0.0
    noise: float = 0.0  # standard deviation of the Gaussian noise added to each value
    phase: float = 0.0  # in periods

    def __post_init__(self) -> None:
        if self.kind not in WAVEFORMS:
            raise ValueError(f"unknown waveform {self.kind!r}; one of {', '.join(WAVEFORMS)}")
        values = (self.amplitude, self.period, self.offset, self.noise, self.phase)
        if not all(math.isfinite(value) for value in values):
            raise ValueError("waveform parameters must be finite numbers")
        if not self.period > 0:
            raise ValueError("the period must be positive")
        if not self.noise >= 0:
            raise ValueError("the noise must not be negative")


class Waveform(Protocol):
    def value(self, t: float) -> float: ...


class _Periodic(ABC):
    def __init__(self, shape: Shape, rng: random.Random) -> None:
        self._shape = shape
        self._rng = rng
        self._frequency = 1.0 / shape.period

    def value(self, t: float) -> float:
        s = self._shape
        x = self.unit(t * self._frequency + s.phase)
        noise = self._rng.gauss(0.0, s.noise) if s.noise else 0.0
        return s.offset + s.amplitude * x + noise

    @abstractmethod
    def unit(self, cycles: float) -> float:
        """The shape's value, from -1 to 1, after `cycles` periods."""


class _Sine(_Periodic):
    def unit(self, cycles: float) -> float:
        return math.sin(2.0 * math.pi * cycles)


class _Saw(_Periodic):
    def unit(self, cycles: float) -> float:
        return 2.0 * (cycles - math.floor(cycles)) - 1.0


class _Square(_Periodic):
    def unit(self, cycles: float) -> float:
        return 1.0 if cycles - math.floor(cycles) < 0.5 else -1.0


class _Walk:
    """A random walk around the offset: steps of amplitude · √(dt / period), pulled gently back
    (an Ornstein-Uhlenbeck process) so that a long run stays in range."""

    def __init__(self, shape: Shape, rng: random.Random) -> None:
        self._shape = shape
        self._rng = rng
        self._level = 0.0
        self._last: float | None = None

    def value(self, t: float) -> float:
        s = self._shape
        if self._last is not None and t > self._last:
            dt = t - self._last
            pull = min(1.0, dt / (10.0 * s.period))
            self._level += -self._level * pull + self._rng.gauss(0.0, math.sqrt(dt / s.period))
        self._last = t
        noise = self._rng.gauss(0.0, s.noise) if s.noise else 0.0
        return s.offset + s.amplitude * self._level + noise


class _Bursts:
    """Quiet at the offset, with bursts at random times (one every `period` on average): a jump
    of about the amplitude that decays within a tenth of the period."""

    def __init__(self, shape: Shape, rng: random.Random) -> None:
        self._shape = shape
        self._rng = rng
        self._decay = shape.period / 10.0
        self._next = rng.expovariate(1.0 / shape.period)
        self._height = 0.0
        self._at = -math.inf

    def value(self, t: float) -> float:
        s = self._shape
        while t >= self._next:
            self._at = self._next
            self._height = s.amplitude * self._rng.uniform(0.5, 1.5)
            self._next += self._rng.expovariate(1.0 / s.period)
        since = t - self._at
        burst = self._height * math.exp(-since / self._decay) if since >= 0 else 0.0
        noise = self._rng.gauss(0.0, s.noise) if s.noise else 0.0
        return s.offset + burst + noise


_KINDS: dict[str, type[_Periodic] | type[_Walk] | type[_Bursts]] = {
    "sine": _Sine,
    "saw": _Saw,
    "square": _Square,
    "walk": _Walk,
    "bursts": _Bursts,
}


def waveform(shape: Shape, rng: random.Random) -> Waveform:
    return _KINDS[shape.kind](shape, rng)
