"""Readings of several sensors on one time grid (fill none, previous, linear), and receive lags."""

from datetime import UTC, datetime, timedelta

import pytest

from telemetry_ingest_service.domain.alignment import ORIGIN, align, grid, receive_lag
from tests.experiment.factories import (
    create_experiment,
    create_run_in_status,
    expect,
    start_capture,
)
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import batch, bearer, bind, create_sensor, reading

ALIGNED = "/api/v1/telemetry/aligned"
SECOND = timedelta(seconds=1)
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(*seconds: float) -> list[datetime]:
    return [T0 + s * SECOND for s in seconds]


# --- the pure functions -------------------------------------------------------------------------


def test_the_grid_starts_on_a_multiple_of_the_step_from_the_origin():
    points = grid(T0 + 0.3 * SECOND, T0 + 3 * SECOND, SECOND)

    assert points == at(1, 2)
    assert all((p - ORIGIN) % SECOND == timedelta(0) for p in points)
    assert grid(T0, T0 + 3 * SECOND, SECOND) == at(0, 1, 2)
    assert grid(T0, T0, SECOND) == []


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        # Readings: 10 at 0.5 s, 20 at 2.0 s, 40 at 3.5 s; grid points 0 … 4 s.
        ("none", [None, 10.0, 20.0, None, 40.0]),
        ("previous", [None, 10.0, 20.0, 20.0, 40.0]),
        ("linear", [None, 10 + 10 * (0.5 / 1.5), 20.0, 20 + 20 * (1 / 1.5), None]),
    ],
)
def test_fill_modes(fill, expected):
    aligned = align(at(0.5, 2.0, 3.5), [10.0, 20.0, 40.0], at(0, 1, 2, 3, 4), SECOND, fill)

    assert aligned == pytest.approx(expected)


def test_none_takes_the_latest_reading_of_the_step_that_ends_at_the_point():
    aligned = align(at(0.2, 0.9, 1.0), [1.0, 2.0, 3.0], at(1, 2), SECOND, "none")

    assert aligned == [3.0, None]


def test_receive_lag_summary():
    assert receive_lag([2.0, 0.5, 1.0]) == {"min": 0.5, "median": 1.0, "max": 2.0}
    assert receive_lag([]) is None


# --- the API --------------------------------------------------------------------------------------


@pytest.fixture
async def sensors(api, owner, project_id):
    return [await create_sensor(api, owner, project_id) for _ in "ab"]


async def send(ingest, sensor, points: list[tuple[datetime, float]], **fields):
    readings = [reading(when, value) for when, value in points]
    response = await ingest.post(
        "/api/v1/telemetry", json=batch(sensor, readings, **fields), headers=bearer(sensor["token"])
    )
    return await expect(response, 202)


def params(sensors, **extra):
    """The sensors (none has a profile: the raw layer), and more query parameters."""
    return [*(("sensor_id", s["id"]) for s in sensors), ("layer", "raw"), *extra.items()]


async def test_two_sensors_on_one_grid(ingest, owner, sensors, clock):
    a, b = sensors
    base = clock.now.replace(microsecond=0) - 10 * SECOND
    await send(ingest, a, [(base + 0.5 * SECOND, 10.0), (base + 2 * SECOND, 20.0)])
    await send(ingest, b, [(base + 1 * SECOND, 5.0), (base + 3 * SECOND, 7.0)])
    window = {"from": base.isoformat(), "to": (base + 4 * SECOND).isoformat()}

    previous = await expect(
        await ingest.get(
            ALIGNED, params=params(sensors, fill="previous", **window), headers=owner.headers
        ),
        200,
    )
    linear = await expect(
        await ingest.get(
            ALIGNED, params=params(sensors, fill="linear", step="500ms", **window),
            headers=owner.headers,
        ),
        200,
    )  # fmt: skip

    assert previous["times"] == [
        (base + s * SECOND).isoformat().replace("+00:00", "Z") for s in range(4)
    ]
    assert previous["step_seconds"] == 1.0
    assert [s["sensor_id"] for s in previous["series"]] == [a["id"], b["id"]]
    assert previous["series"][0]["values"] == [None, 10.0, 20.0, 20.0]
    assert previous["series"][1]["values"] == [None, 5.0, 5.0, 7.0]
    assert linear["series"][0]["values"] == pytest.approx(
        [None, 10.0, 10 + 10 / 3, 10 + 20 / 3, 20.0, None, None, None], abs=1e-9
    )
    assert linear["series"][1]["values"] == pytest.approx(
        [None, None, 5.0, 5.5, 6.0, 6.5, 7.0, None], abs=1e-9
    )


async def test_receive_lag_shows_how_far_device_clocks_are_behind(ingest, owner, sensors, clock):
    a, _ = sensors
    late = clock.now - 30 * SECOND  # the device's clock runs 30 s behind the server's
    await send(ingest, a, [(late, 1.0), (late + SECOND, 2.0)])
    window = {"from": (late - SECOND).isoformat(), "to": (late + 3 * SECOND).isoformat()}

    body = await expect(
        await ingest.get(ALIGNED, params=params([a], **window), headers=owner.headers), 200
    )

    lag = body["series"][0]["receive_lag"]
    assert lag["max"] == pytest.approx(30.0)
    assert lag["min"] == pytest.approx(29.0)


async def test_a_capture_session_gives_the_range(api, ingest, owner, project_id, sensors, clock):
    a, _ = sensors
    experiment = await create_experiment(api, owner, project_id)
    run = await create_run_in_status(api, owner, experiment["id"], "running")
    await bind(api, owner, run["id"], a["id"])
    session = await start_capture(api, owner, run["id"])
    started = datetime.fromisoformat(session["started_at"])
    await send(ingest, a, [(started + 0.5 * SECOND, 3.0)])

    body = await expect(
        await ingest.get(
            ALIGNED,
            params=params(
                [a],
                capture_session_id=session["id"],
                to=(started + 3 * SECOND).isoformat(),
                fill="previous",
            ),
            headers=owner.headers,
        ),
        200,
    )  # fmt: skip

    assert body["times"][0] >= session["started_at"][:19]
    assert body["series"][0]["values"][-1] == 3.0


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"step": "1x"}, "step"),
        ({"step": "0s"}, "step"),
        ({"fill": "spline"}, "fill"),
    ],
)
async def test_bad_queries(ingest, owner, sensors, extra, field):
    window = {"from": T0.isoformat(), "to": (T0 + SECOND).isoformat()}
    response = await ingest.get(
        ALIGNED, params=params(sensors, **window, **extra), headers=owner.headers
    )

    body = await assert_problem(response, 422, "validation_failed")
    assert any(error["field"] == field for error in body["errors"]), body


async def test_sensors_are_required_and_a_range_too(ingest, owner, sensors):
    no_sensor = await ingest.get(
        ALIGNED, params={"run_id": sensors[0]["id"], "from": T0.isoformat()}, headers=owner.headers
    )
    no_range = await ingest.get(ALIGNED, params=params(sensors), headers=owner.headers)

    await assert_problem(no_sensor, 422, "validation_failed")
    await assert_problem(no_range, 422, "no_range")


async def test_too_many_points_and_strangers(ingest, owner, sensors, auth_stub):
    window = {"from": T0.isoformat(), "to": (T0 + timedelta(days=1)).isoformat(), "step": "1s"}
    stranger = auth_stub.user()

    too_many = await ingest.get(ALIGNED, params=params(sensors, **window), headers=owner.headers)
    hidden = await ingest.get(ALIGNED, params=params(sensors, **window), headers=stranger.headers)

    await assert_problem(too_many, 422, "too_many_points")
    await assert_problem(hidden, 404, "sensor_not_found")
