"""Reading stored telemetry back: history pages in (timestamp, batch, seq) order and streamed
exports equal to the history of the same selection, refused queries. Readers are members of a
project of the sensor (or of the run or capture session asked for); anyone else finds nothing.
Aggregates: test_aggregates.py."""

import base64
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.experiment.factories import (
    create_experiment,
    share_sensor,
    start_capture,
)
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import (
    RAW_LAYER_FIELDS,
    READING_FIELDS,
    accepted,
    batch,
    create_sensor,
    reading,
    readings_at,
    stop_capture,
)
from tests.telemetry_ingest.readings_api import (
    AGGREGATE,
    EXPORT,
    HISTORY,
    HOUR,
    SECOND,
    aligned,
    bound_run,
    csv_cell,
    csv_rows_as_history,
    export,
    get,
    history,
    instant,
    keys,
    physical,
    problem,
    query,
    send_at,
    timezone_shifted,
)


@pytest.fixture
def base(clock, sensors):
    """A minute start after the profiles' start; the clock moved three hours past it."""
    start = aligned(clock.now + SECOND, timedelta(minutes=1))
    clock.advance(3 * 3600)
    return start


@pytest.fixture
async def experiment(api, owner, project_id):
    return await create_experiment(api, owner, project_id)


# --- history -----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 4, 1000])
async def test_history_pages_through_equal_timestamps_without_gaps_or_duplicates(
    ingest, owner, sensors, base, limit
):
    a, b = sensors
    sent: list[tuple[datetime, int, int, str, float]] = []  # timestamp, batch, seq, sensor, raw
    plan = [
        (a, [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)]),
        (b, [(0, 11.0), (1, 12.0), (2, 13.0), (3, 14.0)]),
        # The same sensor again at the same instants, twice in one batch at one of them.
        (a, [(2, 21.0), (2, 22.0), (1, 23.0), (5, 24.0)]),
        (b, [(-1, 31.0)]),
    ]
    for index, (sensor, points) in enumerate(plan):
        await send_at(ingest, sensor, base, points)
        for seq, (offset, raw) in enumerate(points):
            sent.append((base + timedelta(seconds=offset), index, seq, sensor["id"], raw))
    expected = [(sensor_id, when, raw) for when, _, _, sensor_id, raw in sorted(sent)]

    items = await history(ingest, owner, query(sensors), limit=limit)

    assert keys(items) == expected


async def test_history_items_carry_every_field(ingest, owner, sensor, base, clock):
    received = clock.now
    await send_at(ingest, sensor, base, [(0, 1.5), (1, -2.0)])

    items = await history(ingest, owner, query([sensor]))

    assert [list(item) for item in items] == [READING_FIELDS, READING_FIELDS]
    first = items[0]
    assert instant(first["timestamp"]) == base
    assert first["timestamp"].endswith("Z")
    assert instant(first["received_at"]) == received
    assert first["sensor_id"] == sensor["id"]
    assert (first["raw_value"], first["physical_value"]) == (1.5, physical(1.5))
    assert (first["signal"], first["conversion_status"], first["late"]) == ("value", "ok", False)
    assert (first["run_id"], first["capture_session_id"], first["meta"]) == (None, None, None)
    assert items[1]["physical_value"] == physical(-2.0)


async def test_raw_layer_omits_physical_values(ingest, owner, sensor, base):
    await send_at(ingest, sensor, base, [(0, 1.5), (1, 2.5)])

    items = await history(ingest, owner, query([sensor], layer="raw"))

    assert [list(item) for item in items] == [RAW_LAYER_FIELDS, RAW_LAYER_FIELDS]
    assert [item["raw_value"] for item in items] == [1.5, 2.5]


async def test_readings_without_profile_have_no_physical_value(
    api, ingest, owner, project_id, base
):
    bare = await create_sensor(api, owner, project_id)
    await send_at(ingest, bare, base, [(0, 1.0)])

    [item] = await history(ingest, owner, query([bare]))

    assert (item["physical_value"], item["conversion_status"]) == (None, "no_profile")


async def test_from_is_inclusive_and_to_exclusive(ingest, owner, sensor, base):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(base, *range(10))))

    def raws(items):
        return [item["raw_value"] for item in items]

    both = await history(
        ingest, owner, query([sensor], start=base + 2 * SECOND, end=base + 5 * SECOND)
    )
    since = await history(ingest, owner, query([sensor], start=base + 7 * SECOND))
    until = await history(ingest, owner, query([sensor], end=base + 2 * SECOND))
    # The same instants written with another offset select the same readings.
    offset = timezone_shifted(base + 2 * SECOND), timezone_shifted(base + 5 * SECOND)
    shifted = await history(ingest, owner, query([sensor], start=offset[0], end=offset[1]))

    assert raws(both) == [2.0, 3.0, 4.0]
    assert raws(since) == [7.0, 8.0, 9.0]
    assert raws(until) == [0.0, 1.0]
    assert raws(shifted) == [2.0, 3.0, 4.0]


async def test_history_spans_months_in_time_order(ingest, owner, sensor, base):
    # Sent newest first: the history is in time order whatever the storage order.
    await send_at(ingest, sensor, base, [(0, 3.0)])
    await send_at(ingest, sensor, base - timedelta(days=40), [(0, 2.0)])
    await send_at(ingest, sensor, base - timedelta(days=95), [(0, 1.0)])

    everything = await history(ingest, owner, query([sensor]), limit=1)
    middle = await history(
        ingest,
        owner,
        query([sensor], start=base - timedelta(days=41), end=base - timedelta(days=39)),
    )

    assert [item["raw_value"] for item in everything] == [1.0, 2.0, 3.0]
    assert [instant(item["timestamp"]) for item in everything] == [
        base - timedelta(days=95),
        base - timedelta(days=40),
        base,
    ]
    assert [item["raw_value"] for item in middle] == [2.0]


async def test_history_by_run_and_capture_session(api, ingest, owner, experiment, sensors, base):
    a, b = sensors
    await send_at(ingest, a, base, [(0, 1.0)])  # before the binding: no run
    run = await bound_run(api, owner, experiment, sensors)
    first = await start_capture(api, owner, run["id"])
    await send_at(ingest, a, base, [(1, 2.0)])
    await send_at(ingest, b, base, [(2, 3.0)])
    await stop_capture(api, owner, run["id"], first["id"])
    second = await start_capture(api, owner, run["id"])
    await send_at(ingest, a, base, [(3, 4.0)])

    def raws(items):
        return [item["raw_value"] for item in items]

    by_run = await history(ingest, owner, query(run_id=run["id"]))
    by_first = await history(ingest, owner, query(capture_session_id=first["id"]))
    by_second = await history(
        ingest, owner, query(run_id=run["id"], capture_session_id=second["id"])
    )
    a_in_run = await history(ingest, owner, query([a], run_id=run["id"]))

    assert raws(by_run) == [2.0, 3.0, 4.0]
    assert {item["run_id"] for item in by_run} == {run["id"]}
    assert raws(by_first) == [2.0, 3.0]
    assert {item["capture_session_id"] for item in by_first} == {first["id"]}
    assert raws(by_second) == [4.0]
    assert raws(a_in_run) == [2.0, 4.0]


async def test_history_shows_late_readings_and_merged_meta(
    api, ingest, owner, experiment, sensor, base
):
    run = await bound_run(api, owner, experiment, [sensor], "succeeded")
    readings = [
        reading(base, 1.0, meta={"signal": "temperature", "channel": 3}),
        reading(base + SECOND, 2.0),
    ]
    await accepted(
        ingest,
        sensor["token"],
        batch(sensor, readings, run_id=run["id"], meta={"firmware": "1.4", "channel": 1}),
    )

    items = await history(ingest, owner, query([sensor]))

    assert [(item["late"], item["run_id"]) for item in items] == [(True, run["id"])] * 2
    assert items[0]["meta"] == {"firmware": "1.4", "channel": 3, "signal": "temperature"}
    assert items[0]["signal"] == "temperature"
    assert items[1]["meta"] == {"firmware": "1.4", "channel": 1}
    assert items[1]["signal"] == "value"


async def test_twenty_sensors_and_the_largest_limit_are_accepted(ingest, owner, sensor, base):
    await send_at(ingest, sensor, base, [(0, 1.0)])

    page = await get(ingest, owner, HISTORY, [*query([sensor] * 20), ("limit", "10000")])

    assert [item["raw_value"] for item in page["items"]] == [1.0]
    assert page["next_cursor"] is None


# --- who may read ------------------------------------------------------------------------------

ROUTES = {
    "history": (HISTORY, []),
    "aggregate": (AGGREGATE, [("bucket", "1m")]),
    "export": (EXPORT, [("format", "csv")]),
}


def route_query(route: str, base: datetime, **scope: Any) -> tuple[str, list[tuple[str, str]]]:
    url, extra = ROUTES[route]
    return url, [*query(start=base - HOUR, end=base + HOUR, **scope), *extra]


@pytest.mark.parametrize("route", list(ROUTES))
async def test_viewer_of_the_home_project_reads(ingest, viewer, sensor, base, route):
    await send_at(ingest, sensor, base, [(0, 1.0)])
    url, params = route_query(route, base, sensors=[sensor])

    response = await ingest.get(url, params=params, headers=viewer.headers)

    assert response.status == 200, await response.text()
    assert sensor["id"] in await response.text()


@pytest.mark.parametrize("route", list(ROUTES))
async def test_member_of_a_project_the_sensor_was_shared_into_reads(
    api, ingest, auth_stub, owner, sensor, base, route
):
    shared = await share_sensor(api, auth_stub, owner, sensor)
    reader = auth_stub.member(shared, "viewer")
    await send_at(ingest, sensor, base, [(0, 1.0)])
    url, params = route_query(route, base, sensors=[sensor])

    response = await ingest.get(url, params=params, headers=reader.headers)

    assert response.status == 200, await response.text()
    assert sensor["id"] in await response.text()


@pytest.mark.parametrize("route", list(ROUTES))
async def test_stranger_finds_no_sensor(ingest, auth_stub, sensors, base, route):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    await send_at(ingest, sensors[0], base, [(0, 1.0)])

    for scope in ([sensors[0]], sensors, [uuid.uuid4()]):
        url, params = route_query(route, base, sensors=scope)
        await problem(ingest, stranger, url, params, 404, "sensor_not_found")


@pytest.mark.parametrize("route", list(ROUTES))
async def test_one_hidden_sensor_hides_the_whole_answer(
    api, ingest, auth_stub, owner, sensor, base, route
):
    elsewhere = uuid.uuid4()
    other_owner = auth_stub.member(elsewhere, "owner")
    hidden = await create_sensor(api, other_owner, elsewhere)
    url, params = route_query(route, base, sensors=[sensor, hidden])

    await problem(ingest, owner, url, params, 404, "sensor_not_found")


@pytest.mark.parametrize("route", list(ROUTES))
async def test_stranger_finds_no_run_or_capture_session(
    api, ingest, auth_stub, owner, experiment, sensor, base, route
):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    run = await bound_run(api, owner, experiment, [sensor])
    session = await start_capture(api, owner, run["id"])
    await send_at(ingest, sensor, base, [(0, 1.0)])

    for who, run_id in ((stranger, run["id"]), (owner, uuid.uuid4())):
        url, params = route_query(route, base, run_id=run_id)
        await problem(ingest, who, url, params, 404, "run_not_found")
    for who, session_id in ((stranger, session["id"]), (owner, uuid.uuid4())):
        url, params = route_query(route, base, capture_session_id=session_id)
        await problem(ingest, who, url, params, 404, "capture_session_not_found")


@pytest.mark.parametrize("route", list(ROUTES))
async def test_member_of_the_run_project_reads_by_run_and_session(
    api, ingest, viewer, owner, experiment, sensor, base, route
):
    run = await bound_run(api, owner, experiment, [sensor])
    session = await start_capture(api, owner, run["id"])
    await send_at(ingest, sensor, base, [(0, 1.0)])

    for scope in ({"run_id": run["id"]}, {"capture_session_id": session["id"]}):
        url, params = route_query(route, base, **scope)
        response = await ingest.get(url, params=params, headers=viewer.headers)
        assert response.status == 200, await response.text()


@pytest.mark.parametrize("route", list(ROUTES))
async def test_without_a_token_nothing_is_read(ingest, sensor, base, route):
    url, params = route_query(route, base, sensors=[sensor])

    body = await problem(ingest, None, url, params, 401, "unauthorized")

    assert body["status"] == 401


@pytest.mark.parametrize("route", list(ROUTES))
async def test_a_sensor_token_is_not_a_user_token(ingest, sensor, base, route):
    url, params = route_query(route, base, sensors=[sensor])
    headers = {"Authorization": f"Bearer {sensor['token']}"}

    response = await ingest.get(url, params=params, headers=headers)

    await assert_problem(response, 401, "unauthorized")


# --- refused queries ---------------------------------------------------------------------------


def encoded(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T01:00:00Z"
SENSOR = str(uuid.uuid4())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param([("from", T0), ("to", T1)], "", id="no-scope"),
        pytest.param([("sensor_id", SENSOR), ("from", T1), ("to", T0)], "", id="to-before-from"),
        pytest.param([("sensor_id", SENSOR), ("from", T0), ("to", T0)], "", id="to-equals-from"),
        pytest.param([("sensor_id", SENSOR), ("from", "2026-01-01T00:00:00")], "from", id="naive"),
        pytest.param([("sensor_id", SENSOR), ("to", "2026-01-01")], "to", id="date-only"),
        pytest.param([("sensor_id", SENSOR), ("from", "yesterday")], "from", id="not-a-time"),
        pytest.param([("sensor_id", SENSOR), ("limit", "0")], "limit", id="limit-0"),
        pytest.param([("sensor_id", SENSOR), ("limit", "10001")], "limit", id="limit-10001"),
        pytest.param([("sensor_id", SENSOR)] * 21, "sensor_id", id="21-sensors"),
        pytest.param([("sensor_id", "not-a-uuid")], "sensor_id.0", id="bad-sensor"),
        pytest.param([("run_id", "42")], "run_id", id="bad-run"),
        pytest.param([("sensor_id", SENSOR), ("layer", "cooked")], "layer", id="bad-layer"),
        pytest.param([("sensor_id", SENSOR), ("sort", "timestamp")], "sort", id="unknown"),
        pytest.param([("sensor_id", SENSOR), ("format", "csv")], "format", id="export-param"),
    ],
)
async def test_bad_history_queries_are_422(ingest, owner, params, field):
    body = await problem(ingest, owner, HISTORY, params, 422, "validation_failed")

    assert field in {error["field"] for error in body["errors"]}, body
    assert {error["in"] for error in body["errors"]} == {"query"}


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        encoded(b"not json"),
        encoded(b"[1, 2, 3]"),
        encoded(b'{"t": "2026-01-01T00:00:00Z"}'),
        encoded(b'{"t": "yesterday", "b": 1, "s": 0}'),
        encoded(b'{"t": "2026-01-01T00:00:00Z", "b": "one", "s": 0}'),
    ],
)
async def test_cursors_this_api_did_not_give_are_400(ingest, owner, sensor, cursor):
    params = [*query([sensor]), ("cursor", cursor)]

    await problem(ingest, owner, HISTORY, params, 400, "invalid_cursor")


@pytest.mark.parametrize(
    "params",
    [
        pytest.param([("bucket", "1m")], id="no-from-to"),
        pytest.param([("from", T0), ("bucket", "1m")], id="no-to"),
        pytest.param([("from", T0), ("to", T1)], id="no-width"),
        pytest.param([("from", T0), ("to", T1), ("bucket", "1m"), ("points", "10")], id="both"),
        pytest.param([("from", T0), ("to", T1), ("bucket", "2m")], id="odd-bucket"),
        pytest.param([("from", T0), ("to", T1), ("points", "0")], id="points-0"),
        pytest.param([("from", T0), ("to", T1), ("points", "many")], id="points-text"),
        pytest.param([("from", T1), ("to", T0), ("bucket", "1m")], id="to-before-from"),
        pytest.param([("from", T0), ("to", T1), ("bucket", "1m"), ("limit", "5")], id="limit"),
    ],
)
async def test_bad_aggregate_queries_are_422(ingest, owner, sensor, params):
    await problem(ingest, owner, AGGREGATE, [*query([sensor]), *params], 422, "validation_failed")


@pytest.mark.parametrize(
    "params",
    [
        pytest.param([("format", "xml")], id="format"),
        pytest.param([("limit", "10")], id="limit"),
        pytest.param([("cursor", "abc")], id="cursor"),
        pytest.param([("layer", "cooked")], id="layer"),
    ],
)
async def test_bad_export_queries_are_422(ingest, owner, sensor, params):
    await problem(ingest, owner, EXPORT, [*query([sensor]), *params], 422, "validation_failed")


async def test_export_without_scope_is_422(ingest, owner):
    await problem(ingest, owner, EXPORT, [("format", "csv")], 422, "validation_failed")


# --- exports -----------------------------------------------------------------------------------


@pytest.fixture
async def stored(api, ingest, owner, experiment, sensors, base):
    """Readings of both sensors: equal timestamps, meta, a late one, formula-like text."""
    a, b = sensors
    await send_at(ingest, a, base, [(0, 1.0), (1, -2.5), (2, 3.25)], meta={"note": "=SUM(A1)"})
    await send_at(ingest, b, base, [(0, 10.0), (1, 20.0), (3, 1e-7)])
    run = await bound_run(api, owner, experiment, [a], "succeeded")
    readings = [reading(base + 4 * SECOND, 5.0, meta={"signal": "-pressure", "n": [1, 2]})]
    await accepted(ingest, a["token"], batch(a, readings, run_id=run["id"]))
    return run


@pytest.mark.parametrize("layer", ["physical", "raw"])
@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_equals_the_history_of_the_same_selection(
    ingest, viewer, sensors, stored, base, fmt, layer
):
    selection = query(sensors, start=base, end=base + HOUR, layer=layer)
    listed = await history(ingest, viewer, selection, limit=2)
    assert len(listed) == 7

    exported, response = await export(ingest, viewer, selection, fmt)

    fields = READING_FIELDS if layer == "physical" else RAW_LAYER_FIELDS
    assert "Content-Length" not in response.headers
    if fmt == "json":
        assert exported == listed
        return
    assert exported[0] == fields
    expected = [
        {
            name: ("'" + value if name == "signal" and value.startswith("-") else value)
            for name, value in ((n, csv_cell(item[n])) for n in fields)
        }
        for item in listed
    ]
    for row in expected:
        if row["meta"]:
            row["meta"] = json.dumps(json.loads(row["meta"]))
    got = csv_rows_as_history(exported)
    # Numbers and instants compared as values: their spelling may differ from the JSON's.
    for row in got + expected:
        for name in ("raw_value", "physical_value"):
            if row.get(name):
                row[name] = float(row[name])
        for name in ("timestamp", "received_at"):
            row[name] = instant(row[name])
    assert got == expected


async def test_export_by_run_holds_only_the_run_readings(ingest, owner, stored, base):
    exported, _ = await export(ingest, owner, query(run_id=stored["id"]), "json")

    assert [(item["raw_value"], item["late"]) for item in exported] == [(5.0, True)]
    assert exported[0]["meta"] == {"signal": "-pressure", "n": [1, 2]}


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_of_nothing_is_empty(ingest, owner, sensor, base, fmt):
    exported, _ = await export(ingest, owner, query([sensor], layer="raw"), fmt)

    assert exported == ([RAW_LAYER_FIELDS] if fmt == "csv" else [])


async def test_export_streams_many_readings(ingest, owner, sensor, base):
    values = [float(i) for i in range(5000)]
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(base, *values, step=0.001)))

    exported, _ = await export(ingest, owner, query([sensor]), "csv")
    listed, _ = await export(ingest, owner, query([sensor]), "json")

    assert [float(row[3]) for row in exported[1:]] == values
    assert [item["raw_value"] for item in listed] == values
    assert [item["physical_value"] for item in listed] == [physical(v) for v in values]
