"""GET /api/v1/runs:compare/overlay: one sensor's trace in each capture session of the runs,
aligned at the session's start and cut into buckets that keep each one's extremes."""

import uuid

import pytest

from experiment_service.app import create_app
from tests.experiment.compare_kit import (
    OVERLAY,
    assert_close,
    buckets_of,
    build_scene,
    id_params,
    instant,
    new_ids,
    overlay,
)
from tests.experiment.factories import create_experiment, create_run
from tests.plugins.roles import role_matrix
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import create_sensor


@pytest.fixture
async def scene(client, ingest, owner, experiment, clock):
    return await build_scene(client, ingest, owner, experiment, clock, metrics=False)


def expected_overlay(scene, letter: str, points: int, signal: str = "value") -> dict:
    """The overlay of a sensor's signal over the scene's runs, from the readings sent."""
    traces = {
        session["id"]: (instant(session["started_at"]), of_signal)
        for session in scene.sessions
        if (
            of_signal := [
                s for s in scene.sent.get((session["id"], letter), []) if s.signal == signal
            ]
        )
    }
    width, buckets = buckets_of(traces, points) if traces else (None, {})
    sessions_of = {run["id"]: [] for run in scene.runs}
    for session in scene.sessions:
        sessions_of[session["run_id"]].append(
            {
                "capture_session_id": session["id"],
                "ordinal_number": session["ordinal_number"],
                "started_at": session["started_at"],
                "stopped_at": session["stopped_at"],
                "buckets": columns(buckets.get(session["id"], [])),
            }
        )
    return {
        "sensor_id": scene.sensors[letter]["id"],
        "signal": signal,
        "points": points,
        "bucket_seconds": None if width is None else width / 1e6,
        "runs": [
            {"run_id": run_id, "sessions": sessions} for run_id, sessions in sessions_of.items()
        ],
    }


COLUMNS = ("t", "count", "min", "max", "first", "last")
EMPTY = {name: [] for name in COLUMNS}


def columns(buckets: list[dict]) -> dict:
    return {name: [bucket[name] for bucket in buckets] for name in COLUMNS}


def assert_overlay(actual: dict, expected: dict) -> None:
    for run in actual["runs"]:
        for session in run["sessions"]:
            for key in ("started_at", "stopped_at"):
                session[key] = session[key] and instant(session[key])
    for run in expected["runs"]:
        for session in run["sessions"]:
            for key in ("started_at", "stopped_at"):
                session[key] = session[key] and instant(session[key])
    assert_close(actual, expected)


@pytest.mark.parametrize("points", [2, 4, 10_000])
async def test_overlay_aligns_each_session_at_its_start_and_keeps_extremes(
    client, viewer, scene, points
):
    body = await overlay(
        client, viewer, scene.ids, sensor_id=scene.sensors["a"]["id"], points=points
    )

    assert_overlay(body, expected_overlay(scene, "a", points))
    # Readings before the session's start are at negative times.
    first = body["runs"][0]["sessions"][0]["buckets"]
    assert first["t"][0] < 0
    assert sum(first["count"]) == 4


async def test_two_points_give_the_longest_trace_two_buckets(client, owner, scene):
    body = await overlay(client, owner, scene.ids, sensor_id=scene.sensors["a"]["id"], points=2)

    # Run 1's session spans 6 s (readings at -1, 0.1, 0.2 and 5 s): 6 s and a microsecond a
    # bucket, counted from its start, so the reading before it is in the bucket before 0.
    assert body["bucket_seconds"] == 6.000001
    assert body["runs"][1]["sessions"][0]["buckets"] == {
        "t": [-6.000001, 0.0],
        "count": [1, 3],
        "min": [2.0, 3.0],
        "max": [2.0, 6.0],
        "first": [2.0, 4.0],
        "last": [2.0, 3.0],
    }


@pytest.mark.parametrize("signal", ["temperature", "pressure"])
async def test_overlay_shows_one_signal_of_a_multi_channel_sensor(client, owner, scene, signal):
    body = await overlay(
        client, owner, scene.ids, sensor_id=scene.sensors["b"]["id"], signal=signal, points=3
    )

    assert_overlay(body, expected_overlay(scene, "b", 3, signal))


async def test_overlay_of_a_sensor_without_physical_values_is_empty(client, owner, scene):
    body = await overlay(client, owner, scene.ids, sensor_id=scene.sensors["c"]["id"])

    assert body["bucket_seconds"] is None
    assert [len(run["sessions"]) for run in body["runs"]] == [2, 1, 0]
    assert all(s["buckets"] == EMPTY for run in body["runs"] for s in run["sessions"])


async def test_a_signal_the_sensor_never_sent_is_empty(client, owner, scene):
    body = await overlay(
        client, owner, scene.ids, sensor_id=scene.sensors["a"]["id"], signal="humidity"
    )

    assert body["bucket_seconds"] is None
    assert all(s["buckets"] == EMPTY for run in body["runs"] for s in run["sessions"])


# --- who may overlay, and what ------------------------------------------------------------------

MATRIX = {"overlay_runs": {"owner": 200, "editor": 200, "viewer": 200, "stranger": 404}}


@role_matrix(MATRIX)
async def test_overlay_by_role(
    client, owner, experiment, project_id, caller_as, route, role, expected
):
    runs = [await create_run(client, owner, experiment["id"]) for _ in range(2)]
    sensor = await create_sensor(client, owner, project_id)

    response = await client.get(
        OVERLAY,
        params=id_params([r["id"] for r in runs], sensor_id=sensor["id"]),
        headers=caller_as(role, project_id).headers,
    )

    if expected == 200:
        assert response.status == 200, await response.text()
    else:
        await assert_problem(response, 404, "run_not_found")


async def test_a_sensor_of_another_project_is_not_found(client, owner, auth_stub, scene):
    other = uuid.uuid4()
    auth_stub.grant(owner, other, "owner")
    elsewhere = await create_sensor(client, owner, other)

    for sensor_id in (elsewhere["id"], str(uuid.uuid4())):
        response = await client.get(
            OVERLAY, params=id_params(scene.ids, sensor_id=sensor_id), headers=owner.headers
        )
        await assert_problem(response, 404, "sensor_not_found")


async def test_another_projects_run_is_not_found(client, owner, auth_stub, scene):
    other = uuid.uuid4()
    stranger = auth_stub.member(other, "owner")
    foreign = await create_run(
        client, stranger, (await create_experiment(client, stranger, other))["id"]
    )

    response = await client.get(
        OVERLAY,
        params=id_params([scene.ids[0], foreign["id"]], sensor_id=scene.sensors["a"]["id"]),
        headers=owner.headers,
    )

    await assert_problem(response, 404, "run_not_found")


async def test_more_buckets_than_an_answer_may_hold_are_refused(
    pgsql, aiohttp_client, make_settings, clock, owner, scene
):
    small = await aiohttp_client(
        create_app(make_settings("experiment", compare_max_overlay_buckets=11), clock=clock)
    )
    params = id_params(scene.ids, sensor_id=scene.sensors["a"]["id"])

    # Three capture sessions: 3 sessions of 4 buckets are too many, of 3 are not.
    response = await small.get(OVERLAY, params=[*params, ("points", "4")], headers=owner.headers)
    await assert_problem(response, 422, "too_many_points")
    response = await small.get(OVERLAY, params=[*params, ("points", "3")], headers=owner.headers)
    assert response.status == 200


TWO = new_ids(2)
SENSOR = str(uuid.uuid4())
BAD_QUERIES = {
    "no sensor_id": ([("ids", TWO[0]), ("ids", TWO[1])], "sensor_id"),
    "a bad sensor_id": ([("ids", TWO[0]), ("ids", TWO[1]), ("sensor_id", "12")], "sensor_id"),
    "one id": ([("ids", TWO[0]), ("sensor_id", SENSOR)], "ids"),
    "101 ids": ([*(("ids", i) for i in new_ids(101)), ("sensor_id", SENSOR)], "ids"),
    "a repeated id": ([("ids", f"{TWO[0]},{TWO[0]}"), ("sensor_id", SENSOR)], "ids"),
    "a bad id": ([("ids", TWO[0]), ("ids", "x"), ("sensor_id", SENSOR)], "ids.1"),
    "one point": ([*(("ids", i) for i in TWO), ("sensor_id", SENSOR), ("points", "1")], "points"),
    "10,001 points": (
        [*(("ids", i) for i in TWO), ("sensor_id", SENSOR), ("points", "10001")],
        "points",
    ),
    "points not a number": (
        [*(("ids", i) for i in TWO), ("sensor_id", SENSOR), ("points", "many")],
        "points",
    ),
    "an empty signal": (
        [*(("ids", i) for i in TWO), ("sensor_id", SENSOR), ("signal", "")],
        "signal",
    ),
    "a baseline": (
        [*(("ids", i) for i in TWO), ("sensor_id", SENSOR), ("baseline", TWO[0])],
        "baseline",
    ),
}


@pytest.mark.parametrize(("query", "field"), BAD_QUERIES.values(), ids=BAD_QUERIES.keys())
async def test_a_bad_query_is_refused(client, owner, query, field):
    response = await client.get(OVERLAY, params=query, headers=owner.headers)

    problem = await assert_problem(response, 422, "validation_failed")

    assert [(error["in"], error["field"]) for error in problem["errors"]] == [("query", field)]
