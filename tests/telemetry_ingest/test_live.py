"""The live stream of stored batches: server-sent events, one per batch, read over HTTP from the
in-process apps. A client sees the batches of its sensors, run or capture session as they are
stored, in order; a reconnecting client names the last batch it got and is sent the ones it
missed first; a client that stops reading is cut off without holding up ingest or the others."""

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from telemetry_ingest_service.app import create_app as create_ingest_app
from tests.experiment.factories import (
    create_experiment,
    create_run_in_status,
    expect,
    set_run_status,
    share_sensor,
    start_capture,
)
from tests.plugins.waiting import eventually
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import (
    RAW_LAYER_FIELDS,
    READING_FIELDS,
    accepted,
    batch,
    bind,
    create_sensor,
    reading,
    readings_at,
    stop_capture,
    stored_batches,
)
from tests.telemetry_ingest.sse import STREAM, Block, get_stream, query

HISTORY = "/api/v1/telemetry"
SECOND = timedelta(seconds=1)


def physical(raw: float) -> float:
    """The physical value of the sensors' profile, linear(a=2, b=1)."""
    return 2.0 * raw + 1.0


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
async def experiment(api, owner, project_id):
    return await create_experiment(api, owner, project_id)


async def running_run(api, owner, experiment, sensors) -> dict[str, Any]:
    run = await create_run_in_status(api, owner, experiment["id"], "draft")
    for sensor in sensors:
        await bind(api, owner, run["id"], sensor["id"])
    return await set_run_status(api, owner, run["id"], "running")


async def send(ingest, sensor, base, *raws: float, offset: float = 0.0, **fields) -> Any:
    """One batch of readings one second apart from `base + offset`, accepted."""
    body = batch(sensor, readings_at(base + offset * SECOND, *raws), **fields)
    answer = await accepted(ingest, sensor["token"], body)
    assert answer["duplicate"] is False
    return answer


def batch_ids(pgsql, sensor=None) -> list[int]:
    return [row["id"] for row in stored_batches(pgsql, sensor["id"] if sensor else None)]


async def history(ingest, user, params) -> list[dict[str, Any]]:
    response = await ingest.get(HISTORY, params=[*params, ("limit", "10000")], headers=user.headers)
    page = await expect(response, 200)
    assert page["next_cursor"] is None
    return page["items"]


# --- live batches --------------------------------------------------------------------------------


async def test_a_connected_client_gets_each_batch_as_one_event_in_order(
    ingest, owner, sensor, base, pgsql, streams
):
    stream = await streams(ingest, owner, query([sensor]))

    await send(ingest, sensor, base, 1.0, 2.0, 3.0)
    await send(ingest, sensor, base, 4.0, offset=10)
    # Stored in the order sent, not in time order.
    body = batch(sensor, [reading(base + 30 * SECOND, 5.0), reading(base + 20 * SECOND, 6.0)])
    await accepted(ingest, sensor["token"], body)
    events = await stream.events(3)

    assert [event.id for event in events] == batch_ids(pgsql, sensor)
    assert [event.raws for event in events] == [[1.0, 2.0, 3.0], [4.0], [5.0, 6.0]]
    assert [reading["timestamp"] for reading in events[2].readings] == [
        (base + 30 * SECOND).isoformat().replace("+00:00", "Z"),
        (base + 20 * SECOND).isoformat().replace("+00:00", "Z"),
    ]
    await stream.quiet()


async def test_event_readings_carry_the_fields_of_the_history(
    ingest, owner, sensor, base, clock, streams
):
    stream = await streams(ingest, owner, query([sensor]))
    received = clock.now
    readings = [reading(base, 1.5, meta={"signal": "temperature", "channel": 3})]
    readings += readings_at(base + SECOND, -2.0, 0.25)
    await accepted(ingest, sensor["token"], batch(sensor, readings, meta={"firmware": "1.4"}))

    [event] = await stream.events(1)
    items = await history(ingest, owner, query([sensor]))

    assert [list(item) for item in event.readings] == [READING_FIELDS] * 3
    assert event.readings == items
    first = event.readings[0]
    assert first["timestamp"].endswith("Z")
    assert first["received_at"] == received.isoformat().replace("+00:00", "Z")
    assert first["sensor_id"] == sensor["id"]
    assert (first["raw_value"], first["physical_value"]) == (1.5, physical(1.5))
    assert (first["signal"], first["conversion_status"], first["late"]) == (
        "temperature",
        "ok",
        False,
    )
    assert (first["run_id"], first["capture_session_id"]) == (None, None)
    assert first["meta"] == {"firmware": "1.4", "signal": "temperature", "channel": 3}
    assert event.readings[1]["meta"] == {"firmware": "1.4"}
    assert event.readings[1]["signal"] == "value"
    assert event.readings[2]["physical_value"] == physical(0.25)


async def test_raw_layer_omits_physical_values(ingest, owner, sensor, base, streams):
    raw = await streams(ingest, owner, query([sensor], layer="raw"))
    cooked = await streams(ingest, owner, query([sensor], layer="physical"))

    await send(ingest, sensor, base, 1.5, 2.5)
    [raw_event] = await raw.events(1)
    [cooked_event] = await cooked.events(1)

    assert raw_event.id == cooked_event.id
    assert [list(item) for item in raw_event.readings] == [RAW_LAYER_FIELDS] * 2
    assert raw_event.raws == [1.5, 2.5]
    assert raw_event.readings == [
        {k: v for k, v in item.items() if k != "physical_value"} for item in cooked_event.readings
    ]
    assert [item["physical_value"] for item in cooked_event.readings] == [4.0, 6.0]


async def test_readings_without_profile_have_no_physical_value(
    api, ingest, owner, project_id, base, streams
):
    bare = await create_sensor(api, owner, project_id)
    stream = await streams(ingest, owner, query([bare]))

    await send(ingest, bare, base, 1.0)
    [event] = await stream.events(1)

    assert [(r["physical_value"], r["conversion_status"]) for r in event.readings] == [
        (None, "no_profile")
    ]


# --- what a stream selects -----------------------------------------------------------------------


async def test_a_sensor_stream_gets_only_its_sensors_batches(
    ingest, owner, sensors, base, pgsql, streams
):
    a, b = sensors
    only_a = await streams(ingest, owner, query([a]))
    only_b = await streams(ingest, owner, query([b]))
    both = await streams(ingest, owner, query([a, b]))

    await send(ingest, b, base, 1.0)
    await send(ingest, a, base, 2.0)
    await send(ingest, b, base, 3.0, offset=5)
    await send(ingest, a, base, 4.0, offset=5)

    a_events = await only_a.events(2)
    b_events = await only_b.events(2)
    all_events = await both.events(4)
    assert [e.raws for e in a_events] == [[2.0], [4.0]]
    assert {r["sensor_id"] for e in a_events for r in e.readings} == {a["id"]}
    assert [e.id for e in a_events] == batch_ids(pgsql, a)
    assert [e.raws for e in b_events] == [[1.0], [3.0]]
    assert [e.id for e in b_events] == batch_ids(pgsql, b)
    assert [e.raws for e in all_events] == [[1.0], [2.0], [3.0], [4.0]]
    assert [e.id for e in all_events] == batch_ids(pgsql)
    await only_a.quiet(0.2)
    await only_b.quiet(0.2)


async def test_a_run_stream_gets_only_the_runs_batches(
    api, ingest, owner, experiment, sensors, base, streams
):
    a, b = sensors
    run = await running_run(api, owner, experiment, [a])
    by_run = await streams(ingest, owner, query(run_id=run["id"]))
    a_in_run = await streams(ingest, owner, query([a], run_id=run["id"]))
    b_in_run = await streams(ingest, owner, query([b], run_id=run["id"]))

    await send(ingest, b, base, 1.0)  # b is not bound: unattached
    await send(ingest, a, base, 2.0, run_id=run["id"])
    await send(ingest, a, base, 9.0, offset=2)  # no running capture session: unattached
    await send(ingest, a, base, 3.0, offset=5, run_id=run["id"])

    events = await by_run.events(2)
    assert [e.raws for e in events] == [[2.0], [3.0]]
    assert {r["run_id"] for e in events for r in e.readings} == {run["id"]}
    assert [e.raws for e in await a_in_run.events(2)] == [[2.0], [3.0]]
    await by_run.quiet(0.2)
    await b_in_run.quiet(0.2)


async def test_a_capture_session_stream_gets_only_the_sessions_batches(
    api, ingest, owner, experiment, sensors, base, streams
):
    a, b = sensors
    run = await running_run(api, owner, experiment, [a, b])
    first = await start_capture(api, owner, run["id"])
    by_first = await streams(ingest, owner, query(capture_session_id=first["id"]))
    by_run = await streams(ingest, owner, query(run_id=run["id"]))

    await send(ingest, a, base, 1.0)
    await send(ingest, b, base, 2.0)
    await stop_capture(api, owner, run["id"], first["id"])
    second = await start_capture(api, owner, run["id"])
    await send(ingest, a, base, 3.0, offset=5)  # to the second session
    # Sent to the stopped session: late, but the session's all the same.
    await send(ingest, b, base, 4.0, offset=5, capture_session_id=first["id"])

    events = await by_first.events(3)
    assert [e.raws for e in events] == [[1.0], [2.0], [4.0]]
    assert {r["capture_session_id"] for e in events for r in e.readings} == {first["id"]}
    assert [r["late"] for e in events for r in e.readings] == [False, False, True]
    run_events = await by_run.events(4)
    assert [e.raws for e in run_events] == [[1.0], [2.0], [3.0], [4.0]]
    assert run_events[2].readings[0]["capture_session_id"] == second["id"]
    await by_first.quiet(0.2)


async def test_every_client_of_a_sensor_gets_the_same_events(
    ingest, auth_stub, owner, project_id, sensor, base, streams
):
    readers = [owner, *(auth_stub.member(project_id, role) for role in ("viewer", "editor"))]
    clients = [await streams(ingest, user, query([sensor])) for user in readers]
    clients.append(await streams(ingest, owner, query([sensor])))

    for index in range(3):
        await send(ingest, sensor, base, float(index), float(index) + 0.5, offset=10 * index)
    got = [await client.events(3) for client in clients]

    assert [e.raws for e in got[0]] == [[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]]
    for events in got[1:]:
        assert events == got[0]


# --- reconnecting --------------------------------------------------------------------------------


async def test_reconnecting_with_last_event_id_gets_the_missed_batches_then_live_ones(
    ingest, owner, sensors, base, pgsql, streams
):
    a, b = sensors
    first = await streams(ingest, owner, query([a]))
    await send(ingest, a, base, 1.0)
    await send(ingest, a, base, 2.0, offset=1)
    seen = await first.events(2)
    first.response.close()

    # Missed while away; b's batches are not the stream's.
    await send(ingest, a, base, 3.0, offset=2)
    await send(ingest, b, base, 30.0, offset=2)
    await send(ingest, a, base, 4.0, offset=3)
    again = await streams(ingest, owner, query([a]), last_event_id=seen[-1].id)
    replayed = await again.events(2)
    await send(ingest, a, base, 5.0, offset=4)
    live = await again.events(1)

    got = seen + replayed + live
    assert [e.raws for e in got] == [[1.0], [2.0], [3.0], [4.0], [5.0]]
    assert [e.id for e in got] == batch_ids(pgsql, a)
    await again.quiet()


async def test_last_event_id_zero_replays_everything_stored(
    ingest, owner, sensors, base, pgsql, streams
):
    a, b = sensors
    await send(ingest, a, base, 1.0)
    await send(ingest, b, base, 2.0)
    await send(ingest, a, base, 3.0, offset=1)

    stream = await streams(ingest, owner, query([a]), last_event_id=0)
    replayed = await stream.events(2)
    await send(ingest, a, base, 4.0, offset=2)
    live = await stream.events(1)

    assert [e.raws for e in replayed + live] == [[1.0], [3.0], [4.0]]
    assert [e.id for e in replayed + live] == batch_ids(pgsql, a)
    await stream.quiet()


async def test_without_last_event_id_earlier_batches_are_not_sent(
    ingest, owner, sensor, base, streams
):
    await send(ingest, sensor, base, 1.0)
    # The notification of the batch above is handled before the stream below opens.
    watcher = await streams(ingest, owner, query([sensor]))
    await send(ingest, sensor, base, 2.0, offset=1)
    await watcher.events(1)

    stream = await streams(ingest, owner, query([sensor]))
    await send(ingest, sensor, base, 3.0, offset=2)

    assert [e.raws for e in await stream.events(1)] == [[3.0]]
    await stream.quiet()


async def test_a_batch_notified_while_a_reconnect_waits_is_sent_once(
    ingest, owner, sensors, base, pgsql, streams
):
    a, b = sensors
    # Many large batches of a, so that replaying them keeps the dispatcher busy for a while.
    padding = {"pad": "x" * 2000}
    for index in range(8):
        readings = readings_at(base + index * 120 * SECOND, *range(1000), step=0.1)
        body = batch(a, readings, meta=padding)
        await accepted(ingest, a["token"], body)
    await send(ingest, b, base, 0.0)
    before = max(batch_ids(pgsql))
    # Replaying for a while (its events, 2 MB each, are never read here).
    await streams(ingest, owner, query([a]), last_event_id=0)
    await send(ingest, b, base, 1.0, offset=1)  # its notification waits behind the replay
    stream = await streams(ingest, owner, query([b]), last_event_id=before)
    await send(ingest, b, base, 2.0, offset=2)

    events = await stream.events(2, within=30)

    assert [e.raws for e in events] == [[1.0], [2.0]]


# --- keep-alive, slow clients, limits ------------------------------------------------------------


async def test_an_idle_stream_gets_keep_alive_comments(
    aiohttp_client, ingest_settings, clock, owner, sensor, base, streams
):
    client = await aiohttp_client(
        create_ingest_app(ingest_settings(stream_keepalive_seconds=0.2), clock=clock)
    )
    stream = await streams(client, owner, query([sensor]))

    first = await stream.block(within=2.0)
    second = await stream.block(within=2.0)
    await send(client, sensor, base, 7.0)
    [event] = await stream.events(1)

    assert first == Block(comments=["keep-alive"])
    assert second == Block(comments=["keep-alive"])
    assert event.raws == [7.0]


async def test_a_stalled_client_is_cut_off_without_slowing_ingest_or_others(
    aiohttp_client, ingest_settings, clock, owner, sensor, base, pgsql, streams
):
    client = await aiohttp_client(
        create_ingest_app(ingest_settings(stream_queue_size=2), clock=clock)
    )
    # Each event carries about 2 MB (the batch meta is repeated in each reading): a client that
    # does not read fills the socket buffers after a few, and then its queue.
    padding = {"pad": "x" * 4000}
    count = 10
    stalled = await streams(client, owner, query([sensor]))
    async with aiohttp.ClientSession(read_bufsize=1 << 23) as session:
        reader = await streams(client, owner, query([sensor]), session=session)
        reading_all = asyncio.create_task(reader.events(count, within=60))

        loop = asyncio.get_running_loop()
        durations = []
        for index in range(count):
            body = batch(sensor, readings_at(base + index * 60 * SECOND, *range(500), step=0.1))
            body["meta"] = padding
            started = loop.time()
            await accepted(client, sensor["token"], body)
            durations.append(loop.time() - started)
        everything = await reading_all

    assert max(durations) < 2.0, durations
    ids = batch_ids(pgsql, sensor)
    assert [e.id for e in everything] == ids
    assert all(len(e.readings) == 500 for e in everything)
    assert everything[-1].readings[0]["meta"] == padding
    # Now reading again, the stalled client gets what was already on its way, then the end.
    partial = await stalled.rest(within=30)
    assert len(partial) < count
    assert [e.id for e in partial] == ids[: len(partial)]


async def test_streams_per_user_are_limited(
    aiohttp_client, ingest_settings, clock, auth_stub, project_id, owner, sensor, streams
):
    client = await aiohttp_client(
        create_ingest_app(ingest_settings(streams_per_user=2), clock=clock)
    )
    first = await streams(client, owner, query([sensor]))
    await streams(client, owner, query([sensor], layer="raw"))

    refused = await get_stream(client, owner, query([sensor]))
    await assert_problem(refused, 429, "too_many_streams")
    # Another user has streams of their own.
    await streams(client, auth_stub.member(project_id, "viewer"), query([sensor]))
    # Nor for another layer.
    refused = await get_stream(client, owner, query([sensor], layer="raw"))
    await assert_problem(refused, 429, "too_many_streams")
    assert first.response.status == 200


async def test_a_closed_stream_frees_its_slot(
    aiohttp_client, ingest_settings, clock, owner, sensor, streams
):
    client = await aiohttp_client(
        create_ingest_app(ingest_settings(streams_per_user=1), clock=clock)
    )
    first = await streams(client, owner, query([sensor]))
    first.response.close()

    async def reopened():
        response = await get_stream(client, owner, query([sensor]))
        response.close()
        return response.status == 200

    await eventually(reopened, within=3.0, interval=0.1)


# --- who may read --------------------------------------------------------------------------------


async def test_member_of_a_project_the_sensor_was_shared_into_reads(
    api, ingest, auth_stub, owner, sensor, base, streams
):
    shared = await share_sensor(api, auth_stub, owner, sensor)
    stream = await streams(ingest, auth_stub.member(shared, "viewer"), query([sensor]))

    await send(ingest, sensor, base, 1.0)

    assert [e.raws for e in await stream.events(1)] == [[1.0]]


async def test_viewer_reads_by_run_and_capture_session(
    api, ingest, viewer, owner, experiment, sensor, base, streams
):
    run = await running_run(api, owner, experiment, [sensor])
    session = await start_capture(api, owner, run["id"])
    by_run = await streams(ingest, viewer, query(run_id=run["id"]))
    by_session = await streams(ingest, viewer, query(capture_session_id=session["id"]))

    await send(ingest, sensor, base, 1.0)

    assert [e.raws for e in await by_run.events(1)] == [[1.0]]
    assert [e.raws for e in await by_session.events(1)] == [[1.0]]


async def test_strangers_find_nothing(api, ingest, auth_stub, owner, experiment, sensors, base):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    run = await running_run(api, owner, experiment, [sensors[0]])
    session = await start_capture(api, owner, run["id"])
    elsewhere = uuid.uuid4()
    hidden = await create_sensor(api, auth_stub.member(elsewhere, "owner"), elsewhere)

    cases = [
        (stranger, query([sensors[0]]), "sensor_not_found"),
        (stranger, query(sensors), "sensor_not_found"),
        (owner, query([uuid.uuid4()]), "sensor_not_found"),
        (owner, query([sensors[0], hidden]), "sensor_not_found"),
        (stranger, query(run_id=run["id"]), "run_not_found"),
        (owner, query(run_id=uuid.uuid4()), "run_not_found"),
        (stranger, query(capture_session_id=session["id"]), "capture_session_not_found"),
        (owner, query(capture_session_id=uuid.uuid4()), "capture_session_not_found"),
    ]
    for user, params, code in cases:
        await assert_problem(await get_stream(ingest, user, params), 404, code)


async def test_without_a_user_token_nothing_is_streamed(ingest, sensor):
    await assert_problem(await get_stream(ingest, None, query([sensor])), 401, "unauthorized")
    response = await ingest.get(
        STREAM, params=query([sensor]), headers={"Authorization": f"Bearer {sensor['token']}"}
    )
    await assert_problem(response, 401, "unauthorized")


# --- refused queries -----------------------------------------------------------------------------

SENSOR = str(uuid.uuid4())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param([], "", id="no-scope"),
        pytest.param([("layer", "raw")], "", id="layer-only"),
        pytest.param([("sensor_id", SENSOR), ("layer", "cooked")], "layer", id="bad-layer"),
        pytest.param([("sensor_id", SENSOR), ("from", "2026-01-01T00:00:00Z")], "from", id="from"),
        pytest.param([("sensor_id", SENSOR), ("limit", "10")], "limit", id="limit"),
        pytest.param([("sensor_id", "not-a-uuid")], "sensor_id.0", id="bad-sensor"),
        pytest.param([("run_id", "42")], "run_id", id="bad-run"),
        pytest.param([("sensor_id", SENSOR)] * 21, "sensor_id", id="21-sensors"),
    ],
)
async def test_bad_stream_queries_are_422(ingest, owner, params, field):
    response = await get_stream(ingest, owner, params)

    body = await assert_problem(response, 422, "validation_failed")
    assert field in {error["field"] for error in body["errors"]}, body
    assert {error["in"] for error in body["errors"]} == {"query"}


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "1 2", "0x10", "1" * 19])
async def test_bad_last_event_ids_are_400(ingest, owner, sensor, value):
    response = await get_stream(ingest, owner, query([sensor]), last_event_id=value)

    await assert_problem(response, 400, "invalid_last_event_id")


async def test_a_superscript_last_event_id_is_400(ingest, owner, sensor):
    response = await get_stream(ingest, owner, query([sensor]), last_event_id="²")

    await assert_problem(response, 400, "invalid_last_event_id")


async def test_the_longest_last_event_id_is_taken(ingest, owner, sensor, base, streams):
    await send(ingest, sensor, base, 1.0)
    stream = await streams(ingest, owner, query([sensor]), last_event_id="9" * 18)

    await send(ingest, sensor, base, 2.0, offset=1)

    # Nothing stored is after that id; live batches come all the same.
    assert [e.raws for e in await stream.events(1)] == [[2.0]]
