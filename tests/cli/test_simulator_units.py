"""The simulator without a stack: what a simulated device measures (waveforms, dropouts, clock
drift, channels) and how the engine answers the service (429/503 after `Retry-After`, bounded
retries, refusals, a clean stop) against a small aiohttp server."""

import asyncio
import itertools
import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web

from etp.simulator.device import Device
from etp.simulator.engine import RetryPolicy, Simulator
from etp.simulator.plan import Faults, SensorPlan, parse_duration, parse_start, sensor_id_of
from etp.simulator.waveforms import Shape, waveform

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def plan(**overrides: Any) -> SensorPlan:
    values: dict[str, Any] = {"sensor_id": uuid.uuid4(), "token": "etps_x", "name": "probe"}
    return SensorPlan(**{**values, **overrides})


def readings(device: Device) -> list[dict[str, Any]]:
    return [r for batch in device.batches() for r in json.loads(batch.body)["readings"]]


def instant(reading: dict[str, Any]) -> float:
    return datetime.fromisoformat(reading["timestamp"]).timestamp()


def test_dropouts_leave_gaps_of_the_silent_time():
    faults = Faults(dropout_every=10, dropout_for=4)
    device = Device(plan(rate=10, faults=faults), start=START, end=START + 30, seed="s", tag="t")

    times = [instant(r) - START for r in readings(device)]

    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times) if b - a > 0.11]
    assert gaps == [4.1, 4.1]  # silent for [10, 14) and [24, 28)
    assert len(times) == 300 - 2 * 40
    assert device.counters.dropouts == 2


def test_drift_moves_the_device_clock_by_seconds_a_minute_from_its_offset():
    faults = Faults(drift=6.0, clock_offset=-30.0)
    device = Device(plan(rate=1, faults=faults), start=START, end=START + 61, seed="s", tag="t")

    times = [instant(r) - START for r in readings(device)]

    assert times[0] == pytest.approx(-30.0)
    assert times[60] == pytest.approx(60 + 6 - 30.0)  # 10 % fast


def test_channels_share_each_tick_and_never_split_it_across_batches():
    sensor = plan(rate=5, batch_size=10, channels=("u", "v", "w"))
    device = Device(sensor, start=START, end=START + 2, seed="s", tag="t")

    batches = [json.loads(batch.body)["readings"] for batch in device.batches()]

    assert [len(b) for b in batches] == [9, 9, 9, 3]  # 3 ticks of 3 readings fit in 10
    flat = [r for b in batches for r in b]
    assert [r["meta"]["signal"] for r in flat[:6]] == ["u", "v", "w", "u", "v", "w"]
    assert len({r["timestamp"] for r in flat[:3]}) == 1


def test_the_waveforms_take_their_shapes():
    def values(kind: str) -> list[float]:
        wave = waveform(Shape(kind, amplitude=2.0, period=1.0, offset=10.0), random.Random(1))
        return [wave.value(t / 8) for t in range(4000)]

    assert values("sine")[:5] == pytest.approx([10, 10 + 2**0.5, 12, 10 + 2**0.5, 10])
    assert values("saw")[:5] == pytest.approx([8, 8.5, 9, 9.5, 10])
    assert values("square")[:5] == [12, 12, 12, 12, 8]
    bursts = values("bursts")
    assert min(bursts) >= 10
    assert max(bursts) > 11
    walk = values("walk")
    assert len(set(walk)) > 3000
    assert all(-10 < (v - 10) / 2 < 10 for v in walk)


def test_a_token_names_its_sensor_and_durations_read_as_people_write_them():
    sensor = uuid.uuid4()
    assert sensor_id_of(f"etps_{sensor.hex}_secret") == sensor
    with pytest.raises(ValueError, match="not an ETP sensor token"):
        sensor_id_of("etpk_abc_secret")
    assert [parse_duration(t) for t in ("90", "250ms", "5m", "1.5h")] == [90, 0.25, 300, 5400]
    assert parse_start("-10m", now=START) == START - 600
    assert parse_start("2027-01-15T08:00:00Z", now=0) == START
    with pytest.raises(ValueError, match="fraction"):
        Faults(late=1.5)
    with pytest.raises(ValueError, match="batch size"):
        SensorPlan(uuid.uuid4(), "t", batch_size=10_001)


class FakeIngest:
    """Answers each POST with the next scripted answer (then 202), recording what came."""

    def __init__(self, script: list[Callable[[], web.Response]] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[tuple[float, dict[str, Any]]] = []
        self.stored: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append((time.monotonic(), body))
        if self.script:
            return self.script.pop(0)()
        duplicate = body["batch_id"] in self.stored
        self.stored.add(body["batch_id"])
        answer = {"accepted": len(body["readings"]), "late": 0, "duplicate": duplicate}
        return web.json_response(answer, status=202)


@pytest.fixture
def fake_ingest(aiohttp_server):
    async def start(script: list[Callable[[], web.Response]] | None = None):
        fake = FakeIngest(script)
        app = web.Application()
        app.router.add_post("/api/v1/telemetry", fake.handle)
        server = await aiohttp_server(app)
        return fake, str(server.make_url("")).rstrip("/")

    return start


def problem(status: int, code: str, **headers: str) -> Callable[[], web.Response]:
    return lambda: web.json_response(
        {"status": status, "code": code, "detail": code}, status=status, headers=headers
    )


def backfill(url: str, *plans: SensorPlan, **options: Any) -> Simulator:
    """A simulator of 1 s of readings measured 10 s ago (sent at once)."""
    return Simulator(url, list(plans), start=time.time() - 10, duration=1.0, **options)


async def test_429_and_503_are_retried_after_retry_after_with_the_same_batch(fake_ingest):
    fake, url = await fake_ingest([problem(429, "too_many_requests", **{"Retry-After": "1"}),
                                   problem(503, "not_stored")])  # fmt: skip
    simulator = backfill(url, plan(rate=10, batch_size=10), retry=RetryPolicy(backoff=0.05))

    summary = await simulator.run()

    assert [call[1]["batch_id"] for call in fake.calls] == [fake.calls[0][1]["batch_id"]] * 3
    assert fake.calls[1][0] - fake.calls[0][0] >= 0.95  # Retry-After: 1
    stats = summary.stats
    assert (stats.retried, stats.rate_limited, stats.unavailable) == (2, 1, 1)
    assert (stats.points_accepted, stats.points_failed, summary.ok) == (10, 0, True)


async def test_a_long_retry_after_is_cut_to_max_wait_and_retries_are_bounded(fake_ingest):
    busy = problem(503, "spool_full", **{"Retry-After": "3600"})
    fake, url = await fake_ingest([busy] * 3)
    policy = RetryPolicy(attempts=3, max_wait=0.05)

    async with asyncio.timeout(5):  # not the hour asked for
        summary = await backfill(url, plan(rate=10, batch_size=10), retry=policy).run()

    assert len(fake.calls) == 3
    assert (summary.stats.points_failed, summary.stats.points_accepted, summary.ok) == (
        10, 0, False,
    )  # fmt: skip


async def test_a_refusal_is_not_retried_and_a_refused_token_stops_its_sensor(fake_ingest):
    fake, url = await fake_ingest([problem(422, "validation_failed"),
                                   problem(401, "invalid_token")])  # fmt: skip

    summary = await backfill(url, plan(rate=10, batch_size=2)).run()

    assert len(fake.calls) == 2  # the rest of the sensor's batches are not sent
    assert summary.stats.rejections == {"validation_failed": 1, "invalid_token": 1}
    assert summary.stats.retried == 0
    assert summary.sensors[0].refused.startswith("401 invalid_token")
    assert summary.stopped_by == "refused"


async def test_no_answer_is_retried_then_given_up():
    simulator = backfill(
        "http://127.0.0.1:9", plan(rate=10, batch_size=10),
        retry=RetryPolicy(attempts=2, backoff=0.01),
    )  # fmt: skip

    summary = await simulator.run()

    assert (summary.stats.unavailable, summary.stats.retried) == (2, 1)
    assert summary.stats.points_failed == 10


async def test_late_duplicate_and_out_of_order_batches_go_in_their_order(fake_ingest):
    fake, url = await fake_ingest()
    faults = Faults(late=0.3, late_by=60, out_of_order=0.3, duplicate=0.3)
    sensor = plan(rate=100, batch_size=10, faults=faults)

    summary = await backfill(url, sensor, seed=7).run()

    sent = [int(body["batch_id"].rsplit("-", 1)[1]) for _, body in fake.calls]
    injected = summary.faults
    assert min(injected[f"{name}_batches"] for name in ("late", "reordered", "duplicate")) > 0
    assert len(sent) == 10 + injected["duplicate_batches"]
    assert sent != sorted(sent)
    assert sorted(set(sent)) == list(range(1, 11))
    assert summary.stats.duplicate_answers == injected["duplicate_batches"]
    assert summary.stats.points_accepted == 100  # each batch counted once


async def test_stop_ends_the_measuring_and_still_sends_the_late_batches(fake_ingest):
    fake, url = await fake_ingest()
    stopped_at: list[int] = []
    sensor = plan(rate=20, batch_size=10, faults=Faults(late=1.0, late_by=3600))

    async def before_flush() -> None:
        stopped_at.append(len(fake.calls))

    simulator = Simulator(url, [sensor], before_flush=before_flush)
    asyncio.get_running_loop().call_later(1.2, simulator.stop)
    summary = await simulator.run()

    assert stopped_at == [0]  # every batch was held back until the stop
    assert len(fake.calls) == summary.stats.batches_sent >= 2
    assert summary.stopped_by == "interrupt"
    assert summary.stats.points_accepted == summary.stats.points_sent
