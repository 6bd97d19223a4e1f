"""Reading stored telemetry back: history pages in (timestamp, batch, seq) order, per-bucket
aggregates checked against a reference computed here from the readings sent, and streamed
exports equal to the history of the same selection. Readers are members of a project of the
sensor (or of the run or capture session asked for); anyone else finds nothing."""

import base64
import csv
import io
import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.experiment.factories import (
    create_experiment,
    create_run_in_status,
    expect,
    set_run_status,
    share_sensor,
    start_capture,
)
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import (
    RAW_LAYER_FIELDS,
    READING_FIELDS,
    accepted,
    batch,
    bind,
    create_sensor,
    linear,
    publish_profile,
    reading,
    readings_at,
    stop_capture,
)

HISTORY = "/api/v1/telemetry"
AGGREGATE = "/api/v1/telemetry/aggregate"
EXPORT = "/api/v1/telemetry/export"
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
WIDTHS = {
    "10s": timedelta(seconds=10),
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)


def physical(raw: float) -> float:
    """The physical value of the sensors' profile, linear(a=2, b=1)."""
    return 2.0 * raw + 1.0


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def timezone_shifted(when: datetime) -> str:
    """The instant written with a +05:30 offset."""
    return when.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()


def aligned(after: datetime, width: timedelta) -> datetime:
    """The first bucket start (ORIGIN + k·width) at or after `after`."""
    return ORIGIN + width * math.ceil((after - ORIGIN) / width)


def bucket_of(when: datetime, width: timedelta) -> datetime:
    """The start of the bucket holding `when`."""
    return ORIGIN + width * ((when - ORIGIN) // width)


def query(
    sensors: Any = (),
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    **params: Any,
) -> list[tuple[str, str]]:
    """Query parameters: one sensor_id per sensor (dicts or ids), `from`/`to`, the rest as is."""
    items = [("sensor_id", str(s["id"] if isinstance(s, dict) else s)) for s in sensors]
    for name, value in (("from", start), ("to", end), *params.items()):
        if value is not None:
            items.append((name, value.isoformat() if isinstance(value, datetime) else str(value)))
    return items


async def get(ingest, user, url: str, params: list[tuple[str, str]], status: int = 200) -> Any:
    headers = {} if user is None else user.headers
    return await expect(await ingest.get(url, params=params, headers=headers), status)


async def problem(ingest, user, url: str, params: list[tuple[str, str]], status: int, code: str):
    headers = {} if user is None else user.headers
    return await assert_problem(await ingest.get(url, params=params, headers=headers), status, code)


async def history(ingest, user, params: list[tuple[str, str]], *, limit: int = 10_000) -> Any:
    """Every page of the history, followed through next_cursor; each page checked for size."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page_params = [*params, ("limit", str(limit)), *([("cursor", cursor)] if cursor else [])]
        page = await get(ingest, user, HISTORY, page_params)
        assert set(page) == {"items", "next_cursor"}
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(page["items"]) <= limit
            return items
        assert len(page["items"]) == limit, "only the last page may be short"


async def export(ingest, user, params: list[tuple[str, str]], fmt: str) -> tuple[Any, Any]:
    """The export's parsed content and the response."""
    response = await ingest.get(EXPORT, params=[*params, ("format", fmt)], headers=user.headers)
    text = await response.text()
    assert response.status == 200, text
    assert response.headers["Content-Disposition"] == f'attachment; filename="telemetry.{fmt}"'
    assert response.headers["Cache-Control"] == "no-store"
    if fmt == "csv":
        assert response.content_type == "text/csv"
        return list(csv.reader(io.StringIO(text, newline=""))), response
    assert response.content_type == "application/json"
    return json.loads(text), response


def csv_cell(value: Any) -> str:
    """What a CSV export writes for a history value."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def csv_rows_as_history(rows: list[list[str]]) -> list[dict[str, Any]]:
    header, *lines = rows
    records = [dict(zip(header, line, strict=True)) for line in lines]
    for record in records:
        if record["meta"]:
            record["meta"] = json.dumps(json.loads(record["meta"]))
    return records


def keys(items: list[dict[str, Any]]) -> list[tuple[str, datetime, float]]:
    return [(item["sensor_id"], instant(item["timestamp"]), item["raw_value"]) for item in items]


# --- the aggregate reference -------------------------------------------------------------------


def reference(
    readings: dict[str, list[tuple[datetime, float]]], width: timedelta
) -> list[dict[str, Any]]:
    """Per sensor and bucket, from readings (timestamp, value) of each sensor in send order."""
    out = []
    for sensor_id in sorted(readings):
        buckets: dict[datetime, list[tuple[datetime, float]]] = {}
        for when, value in sorted(readings[sensor_id], key=lambda r: r[0]):
            start = bucket_of(when, width)
            buckets.setdefault(start, []).append((when, value))
        for start, rows in sorted(buckets.items()):
            values = [value for _, value in rows]
            ends = [when for when, _ in rows[1:]] + [start + width]
            weights = [
                (end - when).total_seconds() for (when, _), end in zip(rows, ends, strict=True)
            ]
            total = sum(weights)
            twa = (
                sum(v * w for v, w in zip(values, weights, strict=True)) / total
                if total
                else sum(values) / len(values)
            )
            out.append(
                {
                    "sensor_id": sensor_id,
                    "bucket_start": start,
                    "count": len(values),
                    "min": min(values),
                    "max": max(values),
                    "avg": sum(values) / len(values),
                    "twa": twa,
                    "first": values[0],
                    "last": values[-1],
                }
            )
    return out


def comparable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate items with bucket_start as an instant and the averages approximate."""
    out = []
    for item in items:
        row = {**item, "bucket_start": instant(item["bucket_start"])}
        row["avg"] = pytest.approx(row["avg"], rel=1e-9)
        row["twa"] = pytest.approx(row["twa"], rel=1e-9)
        out.append(row)
    return out


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def base(clock, sensors):
    """A minute start after the profiles' start; the clock moved three hours past it."""
    start = aligned(clock.now + SECOND, timedelta(minutes=1))
    clock.advance(3 * 3600)
    return start


@pytest.fixture
async def experiment(api, owner, project_id):
    return await create_experiment(api, owner, project_id)


async def bound_run(api, owner, experiment, sensors, status: str = "running") -> dict[str, Any]:
    run = await create_run_in_status(api, owner, experiment["id"], "draft")
    for sensor in sensors:
        await bind(api, owner, run["id"], sensor["id"])
    for step in {"running": ["running"], "succeeded": ["running", "succeeded"]}[status]:
        run = await set_run_status(api, owner, run["id"], step)
    return run


async def send_at(ingest, sensor, base: datetime, points: list[tuple[float, float]], **fields):
    """One batch of readings (seconds after `base`, raw value)."""
    readings = [reading(base + timedelta(seconds=s), value) for s, value in points]
    return await accepted(ingest, sensor["token"], batch(sensor, readings, **fields))


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


# --- aggregates --------------------------------------------------------------------------------

# Seconds after a minute start: irregular, several exactly on 10 s and minute boundaries, and
# one bucket with a single reading at its very start.
OFFSETS_A = [0.0, 0.25, 3.5, 9.999, 10.0, 17.25, 29.0, 30.0, 41.125, 59.5, 60.0, 61.0, 119.0, 150.0]
VALUES_A = [5.0, -1.0, 2.5, 8.0, 3.0, 3.0, -4.5, 0.0, 12.0, 7.0, 1.0, 2.0, 6.5, 9.0]
OFFSETS_B = [0.0, 10.0, 12.0, 20.0, 59.999, 70.0, 80.0, 90.0]
VALUES_B = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]


@pytest.mark.parametrize("bucket", ["10s", "1m"])
@pytest.mark.parametrize("layer", ["raw", "physical"])
async def test_aggregates_match_a_reference(ingest, owner, sensors, base, bucket, layer):
    a, b = sensors
    # A in two batches, the later one sent first; B in one.
    await send_at(ingest, a, base, list(zip(OFFSETS_A[7:], VALUES_A[7:], strict=True)))
    await send_at(ingest, a, base, list(zip(OFFSETS_A[:7], VALUES_A[:7], strict=True)))
    await send_at(ingest, b, base, list(zip(OFFSETS_B, VALUES_B, strict=True)))
    value = physical if layer == "physical" else float
    sent = {
        sensor["id"]: [
            (base + timedelta(seconds=s), value(v)) for s, v in zip(offsets, values, strict=True)
        ]
        for sensor, offsets, values in ((a, OFFSETS_A, VALUES_A), (b, OFFSETS_B, VALUES_B))
    }

    answer = await get(
        ingest,
        owner,
        AGGREGATE,
        query(sensors, start=base, end=base + 5 * 60 * SECOND, bucket=bucket, layer=layer),
    )

    assert {key: answer[key] for key in ("bucket", "origin", "layer")} == {
        "bucket": bucket,
        "origin": "2000-01-01T00:00:00Z",
        "layer": layer,
    }
    assert comparable(answer["items"]) == reference(sent, WIDTHS[bucket])


async def test_aggregates_count_only_readings_in_from_to(ingest, owner, sensor, base):
    await send_at(ingest, sensor, base, [(0, 1.0), (7, 2.0), (8, 4.0), (12, 8.0), (20, 16.0)])
    start, end = base + 7 * SECOND, base + 20 * SECOND

    answer = await get(
        ingest, owner, AGGREGATE, query([sensor], start=start, end=end, bucket="10s", layer="raw")
    )

    kept = {
        sensor["id"]: [(base + timedelta(seconds=s), v) for s, v in ((7, 2.0), (8, 4.0), (12, 8.0))]
    }
    assert comparable(answer["items"]) == reference(kept, WIDTHS["10s"])
    # The first bucket starts on the grid, before `from`.
    assert instant(answer["items"][0]["bucket_start"]) == base


async def test_buckets_without_readings_are_absent(ingest, owner, sensor, base):
    await send_at(ingest, sensor, base, [(5, 1.0), (65, 2.0)])

    answer = await get(
        ingest,
        owner,
        AGGREGATE,
        query([sensor], start=base, end=base + 5 * 60 * SECOND, bucket="10s"),
    )

    starts = [instant(item["bucket_start"]) for item in answer["items"]]
    assert starts == [base, base + 60 * SECOND]


async def test_one_reading_weighs_until_the_bucket_end(ingest, owner, sensor, base):
    # 1.0 for 6 s, 3.0 for the last 4 s: twa 1.8 while avg is 2.
    await send_at(ingest, sensor, base, [(0, 1.0), (6, 3.0)])

    [item] = (
        await get(
            ingest,
            owner,
            AGGREGATE,
            query([sensor], start=base, end=base + 10 * SECOND, bucket="10s", layer="raw"),
        )
    )["items"]

    assert item["avg"] == pytest.approx(2.0)
    assert item["twa"] == pytest.approx(1.8)
    assert (item["first"], item["last"], item["count"]) == (1.0, 3.0, 2)


async def test_physical_layer_skips_readings_without_a_physical_value(
    api, ingest, owner, project_id, clock
):
    bare = await create_sensor(api, owner, project_id)
    switch = aligned(clock.now + SECOND, timedelta(minutes=1)) + 30 * SECOND
    clock.now = switch
    await publish_profile(api, owner, bare["id"], linear(a=2.0, b=1.0))
    clock.advance(600)
    # Before the profile: no_profile; after it: converted, except an overflow (error).
    points = [(-20, 1.0), (-10, 2.0), (0, 3.0), (10, 4.0), (15, 1e308)]
    await send_at(ingest, bare, switch, points)
    never = await create_sensor(api, owner, project_id)
    await send_at(ingest, never, switch, [(0, 5.0)])
    params = query([bare, never], start=switch - 30 * SECOND, end=switch + 30 * SECOND, bucket="1m")

    items = (await get(ingest, owner, AGGREGATE, [*params, ("layer", "physical")]))["items"]
    listed = await history(ingest, owner, query([bare], layer="physical"))

    assert [item["conversion_status"] for item in listed] == [
        "no_profile",
        "no_profile",
        "ok",
        "ok",
        "error",
    ]
    kept = {bare["id"]: [(switch, physical(3.0)), (switch + 10 * SECOND, physical(4.0))]}
    assert comparable(items) == reference(kept, WIDTHS["1m"])


async def test_raw_layer_counts_readings_without_a_physical_value(
    api, ingest, owner, project_id, base
):
    bare = await create_sensor(api, owner, project_id)
    await send_at(ingest, bare, base, [(0, 1.0), (30, 2.0)])

    params = query([bare], start=base, end=base + 60 * SECOND, bucket="1m", layer="raw")
    items = (await get(ingest, owner, AGGREGATE, params))["items"]

    sent = {bare["id"]: [(base, 1.0), (base + 30 * SECOND, 2.0)]}
    assert comparable(items) == reference(sent, WIDTHS["1m"])


@pytest.mark.parametrize(
    ("span", "points", "bucket"),
    [
        (HOUR, 360, "10s"),
        (HOUR, 359, "1m"),
        (HOUR, 60, "1m"),
        (HOUR, 59, "5m"),
        (HOUR, 12, "5m"),
        (HOUR, 11, "1h"),
        (HOUR, 1, "1h"),
        (timedelta(days=3), 72, "1h"),
        (timedelta(days=3), 71, "1d"),
        (timedelta(days=3), 3, "1d"),
        (timedelta(minutes=1), 10_000, "10s"),
    ],
)
async def test_points_pick_the_narrowest_width_that_fits(
    ingest, owner, sensor, span, points, bucket
):
    start = datetime(2026, 3, 1, tzinfo=UTC)
    params = query([sensor], start=start, end=start + span, points=points)

    answer = await get(ingest, owner, AGGREGATE, params)

    assert answer["bucket"] == bucket


async def test_points_answer_at_most_that_many_buckets(ingest, owner, sensor, base):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(base, *range(120))))

    params = query([sensor], start=base, end=base + 120 * SECOND, points=12, layer="raw")
    answer = await get(ingest, owner, AGGREGATE, params)

    assert answer["bucket"] == "10s"
    assert len(answer["items"]) == 12
    assert [item["count"] for item in answer["items"]] == [10] * 12


async def test_points_answer_at_most_that_many_buckets_off_the_grid(ingest, owner, sensor, base):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(base, *range(130))))

    start = base + 5 * SECOND
    params = query([sensor], start=start, end=start + 120 * SECOND, points=12, layer="raw")
    answer = await get(ingest, owner, AGGREGATE, params)

    assert len(answer["items"]) <= 12, (answer["bucket"], len(answer["items"]))


@pytest.mark.parametrize("bucket", list(WIDTHS))
async def test_bucket_starts_are_on_the_origin_grid(ingest, owner, sensor, base, bucket):
    # Readings at odd instants over three days, queried from an odd instant (one day of them
    # for 10 s buckets, which allow no more).
    start = base - timedelta(days=2, hours=5, minutes=7, seconds=13)
    span = timedelta(days=1 if bucket == "10s" else 3)
    sent = [0.5, 3_601.25, 86_399.0, 90_000.75, 172_799.5, 190_000.0]
    await send_at(ingest, sensor, start, [(s, 1.0) for s in sent])
    offsets = [s for s in sent if timedelta(seconds=s) < span]

    params = query([sensor], start=start, end=start + span, bucket=bucket, layer="raw")
    answer = await get(ingest, owner, AGGREGATE, params)

    width = WIDTHS[bucket]
    starts = [instant(item["bucket_start"]) for item in answer["items"]]
    assert all((when - ORIGIN) % width == timedelta(0) for when in starts), starts
    assert starts == sorted({bucket_of(start + timedelta(seconds=s), width) for s in offsets})
    assert sum(item["count"] for item in answer["items"]) == len(offsets)


async def test_too_many_buckets_is_422(ingest, owner, sensor):
    start = datetime(2026, 3, 1, tzinfo=UTC)

    fits = query([sensor], start=start, end=start + 10_000 * 10 * SECOND, bucket="10s")
    await get(ingest, owner, AGGREGATE, fits)
    for params in (
        query([sensor], start=start, end=start + 10_001 * 10 * SECOND, bucket="10s"),
        query([sensor], start=start - timedelta(days=10_001), end=start, bucket="1d"),
        query([sensor], start=datetime(1970, 1, 1, tzinfo=UTC), end=start, points=1),
    ):
        await problem(ingest, owner, AGGREGATE, params, 422, "too_many_buckets")


async def test_first_and_last_follow_the_history_order_at_equal_timestamps(
    ingest, owner, sensor, base
):
    await send_at(ingest, sensor, base, [(0, 1.0), (5, 2.0)])
    await send_at(ingest, sensor, base, [(0, 3.0), (5, 4.0)])
    params = query([sensor], start=base, end=base + 10 * SECOND, layer="raw")
    ordered = [item["raw_value"] for item in await history(ingest, owner, params)]

    [item] = (await get(ingest, owner, AGGREGATE, [*params, ("bucket", "10s")]))["items"]

    assert ordered == [1.0, 3.0, 2.0, 4.0]
    assert (item["first"], item["last"]) == (ordered[0], ordered[-1])
    # 1.0 and 3.0 at 0 s: the later one (3.0) weighs until 5 s; 4.0 from 5 s to the end.
    assert item["twa"] == pytest.approx((3.0 * 5 + 4.0 * 5) / 10)


async def test_aggregates_of_large_finite_values(ingest, owner, sensor, base):
    await send_at(ingest, sensor, base, [(0, 1e308), (5, 1e308)])

    params = query([sensor], start=base, end=base + 10 * SECOND, bucket="10s", layer="raw")

    [item] = (await get(ingest, owner, AGGREGATE, params))["items"]

    assert (item["count"], item["min"], item["max"]) == (2, 1e308, 1e308)
    assert (item["first"], item["last"]) == (1e308, 1e308)
    assert item["avg"] == pytest.approx(1e308)
    assert item["twa"] == pytest.approx(1e308)


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
