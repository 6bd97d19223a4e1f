"""The simulator's engine: every sensor's batches sent to `POST /api/v1/telemetry` with its own
token, when they have been measured (a start in the past is sent as fast as the service takes
it, then the run goes on in real time), faults applied, 429/503 retried after `Retry-After`.

One task per sensor sends its batches in order, one at a time, on one shared connection pool
(httpx): like a device, and enough for the service's limits (batches a second per token).
Nothing is kept on disk: a batch still refused after the last retry is counted as failed.
"""

import asyncio
import heapq
import json
import math
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from etp.client import retry_after_seconds
from etp.simulator.device import Batch, Device
from etp.simulator.plan import SensorPlan
from etp.simulator.stats import SensorTally, Stats, Summary

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REFUSING_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class RetryPolicy:
    """How long one batch is tried: `attempts` tries in all; a `Retry-After` is followed up to
    `max_wait` seconds; without one, waits start at `backoff` and double (with jitter)."""

    attempts: int = 6
    max_wait: float = 30.0
    backoff: float = 0.25

    def wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        return min(self.backoff * 2**attempt * random.uniform(0.5, 1.0), self.max_wait)


@dataclass
class _Sensor:
    device: Device
    tally: SensorTally
    headers: dict[str, str]
    held: list[tuple[float, int, Batch]] = field(default_factory=list)  # late, by release
    reorder: Batch | None = None


class Simulator:
    """Runs the plans from `start` (epoch seconds; default now) for `duration` seconds of
    measuring (default: until stop()). `url` is the gateway's (or the ingest service's) base
    URL. `before_flush` runs once the measuring is over and before the batches held back as
    late are sent (the demo stops its capture there, so they arrive after the capture)."""

    _client: httpx.AsyncClient  # while run() runs

    def __init__(
        self,
        url: str,
        plans: list[SensorPlan],
        *,
        start: float | None = None,
        duration: float | None = None,
        seed: str | int | None = None,
        retry: RetryPolicy | None = None,
        before_flush: Callable[[], Awaitable[None]] | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not plans:
            raise ValueError("nothing to simulate: no sensors")
        if duration is not None and not duration > 0:
            raise ValueError("the duration must be positive")
        self._url = url.rstrip("/") + "/api/v1/telemetry"
        self._plans = plans
        self._start = start
        self._duration = duration
        self._seed = seed if seed is not None else os.urandom(8).hex()
        self._retry = retry or RetryPolicy()
        self._before_flush = before_flush
        self._timeout = timeout
        self._stopping = asyncio.Event()
        self._stopped_by = "duration"
        self._aborted = False
        self._began = math.inf
        self._tasks: list[asyncio.Task[None]] = []
        self._sensors: list[_Sensor] = []
        self.stats = Stats()

    def stop(self, reason: str = "interrupt") -> None:
        """Ends the measuring; batches held back are still sent (see before_flush)."""
        if not self._stopping.is_set():
            self._stopped_by = reason
            self._stopping.set()

    def abort(self) -> None:
        """Ends at once: tries in flight are dropped."""
        self.stop()
        self._aborted = True
        for task in self._tasks:
            task.cancel()

    @property
    def held(self) -> int:
        """Late batches waiting for their time."""
        return sum(len(sensor.held) for sensor in self._sensors)

    async def run(self) -> Summary:
        now = self._began = time.time()
        start = now if self._start is None else self._start
        end = None if self._duration is None else start + self._duration
        tag = f"sim-{os.urandom(4).hex()}"
        self._sensors = [
            _Sensor(
                device=Device(
                    plan, start=start, end=end, seed=f"{self._seed}:{index}", tag=f"{tag}-{index}"
                ),
                tally=SensorTally(plan.name, str(plan.sensor_id)),
                headers={
                    "Authorization": f"Bearer {plan.token}",
                    "Content-Type": "application/json",
                },
            )
            for index, plan in enumerate(self._plans)
        ]
        limits = httpx.Limits(
            max_connections=len(self._plans) + 4, max_keepalive_connections=len(self._plans) + 4
        )
        self.stats = Stats()
        async with httpx.AsyncClient(
            limits=limits, timeout=self._timeout, headers={"User-Agent": "etp-simulator"}
        ) as client:
            self._client = client
            try:
                await self._gather(self._stream(sensor) for sensor in self._sensors)
                seconds = self.stats.elapsed()
                if self._before_flush is not None:
                    await self._before_flush()
                await self._gather(self._flush(sensor) for sensor in self._sensors)
            except asyncio.CancelledError:
                if not self._aborted:
                    raise
                seconds = self.stats.elapsed()
                for sensor in self._sensors:
                    self.stats.points_unsent += sum(b.points for _, _, b in sensor.held)
        if all(sensor.tally.refused for sensor in self._sensors):
            self._stopped_by = "refused"
        faults: dict[str, Any] = {"dropouts": 0, "dropout_seconds": 0.0, "late_batches": 0,
                                  "duplicate_batches": 0, "reordered_batches": 0}  # fmt: skip
        for sensor in self._sensors:
            counters = sensor.device.counters
            faults["dropouts"] += counters.dropouts
            faults["dropout_seconds"] += counters.dropout_seconds
            faults["late_batches"] += counters.late
            faults["duplicate_batches"] += counters.duplicates
            faults["reordered_batches"] += counters.reordered
        faults["dropout_seconds"] = round(faults["dropout_seconds"], 3)
        return Summary(
            seconds=seconds,
            stats=self.stats,
            sensors=[sensor.tally for sensor in self._sensors],
            faults=faults,
            stopped_by=self._stopped_by,
        )

    async def _gather(self, coroutines: Any) -> None:
        self._tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            self._tasks = []

    async def _until(self, moment: float) -> bool:
        """Waits until `moment` (epoch seconds); False when the run was stopped first."""
        delay = moment - time.time()
        if delay > 0 and not self._stopping.is_set():
            try:
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            except TimeoutError:
                pass
        return not self._stopping.is_set()

    async def _stream(self, sensor: _Sensor) -> None:
        held = sensor.held
        order = 0
        for batch in sensor.device.batches():
            while held and held[0][0] <= batch.ready_at:
                if not await self._until(held[0][0]):
                    return
                await self._deliver(sensor, heapq.heappop(held)[2])
            if sensor.tally.refused or not await self._until(batch.ready_at):
                return
            if batch.late:
                order += 1
                heapq.heappush(held, (batch.release_at, order, batch))
            elif batch.reorder and sensor.reorder is None:
                sensor.reorder = batch
            else:
                await self._deliver(sensor, batch)
                if sensor.reorder is not None:
                    await self._deliver(sensor, sensor.reorder)
                    sensor.reorder = None

    async def _flush(self, sensor: _Sensor) -> None:
        if sensor.reorder is not None:
            await self._deliver(sensor, sensor.reorder)
            sensor.reorder = None
        while sensor.held and not sensor.tally.refused:
            await self._deliver(sensor, sensor.held[0][2])
            heapq.heappop(sensor.held)

    async def _deliver(self, sensor: _Sensor, batch: Batch) -> None:
        if sensor.tally.refused:
            return
        stats = self.stats
        if batch.release_at >= self._began:  # a backlog (a start in the past) is no lag
            stats.send_lag_max = max(stats.send_lag_max, time.time() - batch.release_at)
        stats.batches_sent += 1
        stats.points_sent += batch.points
        sensor.tally.points_sent += batch.points
        if await self._post(sensor, batch) and batch.duplicate:
            await self._post(sensor, batch)

    async def _post(self, sensor: _Sensor, batch: Batch) -> bool:
        """Sends one batch until answered for good; True when it was accepted."""
        stats, tally, policy = self.stats, sensor.tally, self._retry
        for attempt in range(policy.attempts):
            if attempt:
                stats.retried += 1
            try:
                response = await self._client.post(
                    self._url, content=batch.body, headers=sensor.headers
                )
            except httpx.TransportError:
                stats.unavailable += 1
                wait = policy.wait(attempt, None)
            else:
                status = response.status_code
                if status == 202:
                    self._accepted(tally, response.json())
                    return True
                if status not in RETRY_STATUSES:
                    self._rejected(tally, batch, response)
                    return False
                if status == 429:
                    stats.rate_limited += 1
                else:
                    stats.unavailable += 1
                wait = policy.wait(
                    attempt, retry_after_seconds(response.headers.get("Retry-After"))
                )
            if attempt + 1 < policy.attempts:
                await asyncio.sleep(wait)
        stats.points_failed += batch.points
        tally.points_failed += batch.points
        return False

    def _accepted(self, tally: SensorTally, answer: dict[str, Any]) -> None:
        stats = self.stats
        if answer.get("duplicate"):
            stats.duplicate_answers += 1
            return
        accepted = int(answer.get("accepted", 0))
        stats.points_accepted += accepted
        tally.points_accepted += accepted
        stats.points_late += int(answer.get("late", 0))
        if answer.get("spooled"):
            stats.points_spooled += accepted

    def _rejected(self, tally: SensorTally, batch: Batch, response: httpx.Response) -> None:
        try:
            problem = response.json()
        except json.JSONDecodeError:
            problem = {}
        code = str(problem.get("code") or response.status_code)
        self.stats.points_rejected += batch.points
        self.stats.rejections[code] += 1
        tally.points_rejected += batch.points
        if response.status_code in REFUSING_STATUSES:
            tally.refused = f"{response.status_code} {code}: {problem.get('detail', '')}".strip()


async def run_interruptible(simulator: Simulator) -> Summary:
    """Runs the simulator with Ctrl-C (SIGINT) and SIGTERM as a clean stop (batches held back
    are still sent); a second Ctrl-C ends at once."""
    loop = asyncio.get_running_loop()
    hits = 0

    def interrupted() -> None:
        nonlocal hits
        hits += 1
        simulator.stop("interrupt")
        if hits > 1:
            simulator.abort()

    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:
        loop.add_signal_handler(number, interrupted)
    try:
        return await simulator.run()
    finally:
        for number in signals:
            loop.remove_signal_handler(number)
