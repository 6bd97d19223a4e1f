"""A simulated device: turns a SensorPlan into the batches it would send, in measurement order.

This is the simulator's hot loop: each reading is one formatted string (its timestamp's date and
time of day are formatted once per second), and a batch's body is built by joining them, with no
object per reading and no JSON encoder.
"""

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

from etp.simulator.plan import SensorPlan
from etp.simulator.waveforms import Shape, Waveform, waveform


@dataclass
class Batch:
    batch_id: str
    body: bytes
    points: int
    first_at: float  # true time of its first reading (epoch seconds)
    ready_at: float  # true time of its last reading: it exists from then on
    release_at: float  # when it is sent: ready_at, or later for a late batch
    late: bool = False
    reorder: bool = False
    duplicate: bool = False


class _Stamp:
    """RFC 3339 UTC timestamps with microseconds, the date and time of day cached per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, t: float) -> str:
        second = math.floor(t)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((t - second) * 1e6):06d}Z"


@dataclass
class DeviceCounters:
    dropouts: int = 0
    dropout_seconds: float = 0.0
    late: int = 0
    duplicates: int = 0
    reordered: int = 0


class Device:
    """Batches of one sensor measured from `start` (epoch seconds) until `end` (None: forever).
    `tag` makes batch ids unique to this simulator run, so a second run is not taken for a
    resend of the first."""

    def __init__(
        self, plan: SensorPlan, *, start: float, end: float | None, seed: str, tag: str
    ) -> None:
        self.plan = plan
        self._start = start
        self._end = end
        self._tag = tag
        self._faults_rng = random.Random(f"{seed}:faults")
        values_rng = random.Random(f"{seed}:values")
        channels = plan.channels or ("",)
        self._channels: list[tuple[Waveform, str]] = []
        for index, channel in enumerate(channels):
            shape = plan.shape
            if len(channels) > 1:  # channels of one sensor: the same shape, out of phase
                shape = Shape(
                    shape.kind,
                    shape.amplitude,
                    shape.period,
                    shape.offset,
                    shape.noise,
                    shape.phase + index / len(channels),
                )
            meta = f',"meta":{{"signal":{json.dumps(channel)}}}' if channel else ""
            self._channels.append((waveform(shape, values_rng), meta))
        envelope = {"sensor_id": str(plan.sensor_id)}
        if plan.run_id is not None:
            envelope["run_id"] = str(plan.run_id)
        if plan.capture_session_id is not None:
            envelope["capture_session_id"] = str(plan.capture_session_id)
        self._head = json.dumps(envelope, separators=(",", ":"))[:-1]
        self.counters = DeviceCounters()

    def batches(self) -> Iterator[Batch]:
        plan, faults = self.plan, self.plan.faults
        start, end, rate = self._start, self._end, plan.rate
        cycle = faults.dropout_every + faults.dropout_for if faults.dropout_for > 0 else 0.0
        gain = faults.drift / 60.0
        offset = faults.clock_offset
        stamp = _Stamp()
        channels = self._channels
        tick = 0
        sequence = 0
        per_batch = plan.ticks_per_batch
        while True:
            readings: list[str] = []
            first_at = last_at = math.nan
            while len(readings) < per_batch * len(channels):
                t = start + tick / rate
                if end is not None and t >= end:
                    break
                elapsed = t - start
                if cycle and elapsed % cycle >= faults.dropout_every:
                    if readings:  # a dropout ends the batch: its readings were measured
                        break
                    resume = start + (elapsed // cycle + 1) * cycle
                    self.counters.dropouts += 1
                    self.counters.dropout_seconds += resume - t
                    tick = math.ceil((resume - start) * rate - 1e-9)
                    continue
                device_time = stamp(t + offset + gain * elapsed)
                head = f'{{"timestamp":"{device_time}","raw_value":'
                for wave, meta in channels:
                    readings.append(f"{head}{wave.value(elapsed):.7g}{meta}}}")
                if len(readings) == len(channels):
                    first_at = t
                last_at = t
                tick += 1
            if not readings:
                return
            sequence += 1
            batch_id = f"{self._tag}-{sequence}"
            body = f'{self._head},"batch_id":"{batch_id}","readings":[{",".join(readings)}]}}'
            batch = Batch(
                batch_id=batch_id,
                body=body.encode(),
                points=len(readings),
                first_at=first_at,
                ready_at=last_at,
                release_at=last_at,
            )
            self._mark(batch)
            yield batch

    def _mark(self, batch: Batch) -> None:
        faults, rng = self.plan.faults, self._faults_rng
        counters = self.counters
        if faults.late and rng.random() < faults.late:
            batch.late = True
            batch.release_at = batch.ready_at + faults.late_by
            counters.late += 1
        elif faults.out_of_order and rng.random() < faults.out_of_order:
            batch.reorder = True
            counters.reordered += 1
        if faults.duplicate and rng.random() < faults.duplicate:
            batch.duplicate = True
            counters.duplicates += 1
