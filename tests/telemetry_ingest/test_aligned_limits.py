"""Alignment's limits, attacked through the API: a grid too fine is refused before anything is
built (the process neither grows nor stalls), the readings one request loads are bounded, and the
alignment itself runs off the event loop."""

import asyncio
import resource
import threading
import time
from datetime import timedelta

import pytest

from telemetry_ingest_service.domain import alignment
from tests.experiment.factories import expect
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import create_sensor
from tests.telemetry_ingest.test_aligned import ALIGNED, SECOND, T0, params, send

MIB = 1024 * 1024
DAY = timedelta(days=1)


@pytest.fixture
async def sensors(api, owner, project_id):
    return [await create_sensor(api, owner, project_id) for _ in "ab"]


def peak_rss() -> int:
    """The process's peak resident size so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def health_latencies(ingest, done: asyncio.Event) -> list[float]:
    """Seconds each /health took, asked one after the other until `done`."""
    latencies = []
    while not done.is_set():
        started = time.perf_counter()
        response = await ingest.get("/health")
        assert response.status == 200
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)
    return latencies


@pytest.mark.parametrize(
    ("step", "length"),
    [("1ms", DAY), ("1ms", 365 * DAY), ("1s", 365 * DAY), ("1ms", 2900 * 365 * DAY)],
)
async def test_a_grid_too_fine_is_refused_before_it_is_built(ingest, owner, sensors, step, length):
    # One day at 1 ms is 86.4 million points: built as datetimes, several GB and a stalled loop.
    window = {"from": T0.isoformat(), "to": (T0 + length).isoformat(), "step": step}
    await ingest.get("/health")  # the app, its pool and the auth stub's answers are warm
    before = peak_rss()
    done = asyncio.Event()
    probe = asyncio.create_task(health_latencies(ingest, done))
    await asyncio.sleep(0.02)

    started = time.perf_counter()
    response = await ingest.get(ALIGNED, params=params(sensors, **window), headers=owner.headers)
    elapsed = time.perf_counter() - started
    done.set()
    latencies = await probe

    body = await assert_problem(response, 422, "too_many_points")
    assert "10000" in body["detail"], body
    assert elapsed < 1.0
    assert latencies
    assert max(latencies) < 1.0
    assert peak_rss() - before < 64 * MIB


async def test_the_readings_one_alignment_loads_are_bounded(ingest_app, owner, sensors):
    ingest = await ingest_app(aligned_max_readings=5)
    a, b = sensors
    await send(ingest, a, [(T0 + s * SECOND, float(s)) for s in range(3)])
    await send(ingest, b, [(T0 + s * SECOND, float(s)) for s in range(3)])
    one = {"from": T0.isoformat(), "to": (T0 + 4 * SECOND).isoformat()}

    both = await ingest.get(ALIGNED, params=params(sensors, **one), headers=owner.headers)
    alone = await ingest.get(ALIGNED, params=params([a], **one), headers=owner.headers)

    body = await assert_problem(both, 422, "too_many_readings")
    assert "narrow the range" in body["detail"]
    assert "5" in body["detail"]
    assert (await expect(alone, 200))["series"][0]["values"] == [0.0, 1.0, 2.0, None]


async def test_alignment_runs_off_the_event_loop(ingest, owner, sensors, monkeypatch):
    a, _ = sensors
    await send(ingest, a, [(T0 + s * SECOND, float(s)) for s in range(3)])
    threads = []
    original = alignment.align

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(alignment, "align", recording)
    window = {"from": T0.isoformat(), "to": (T0 + 4 * SECOND).isoformat()}

    body = await expect(
        await ingest.get(ALIGNED, params=params([a], **window), headers=owner.headers), 200
    )

    assert body["series"][0]["values"] == [0.0, 1.0, 2.0, None]
    assert threads
    assert threading.main_thread() not in threads


async def test_a_grid_at_the_first_instant_there_is(ingest, owner, sensors):
    window = {"from": "0001-01-01T00:00:00Z", "to": "0001-01-01T00:00:03Z"}

    body = await expect(
        await ingest.get(ALIGNED, params=params(sensors, **window), headers=owner.headers), 200
    )

    assert body["times"][0] == "0001-01-01T00:00:00Z"
    assert body["series"][0]["values"] == [None, None, None]
