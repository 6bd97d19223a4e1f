"""Multi-channel sensors: the channel of a reading (`signal`, from its meta.signal, `value`
without one) is a dimension of every read. Two channels of one sensor are kept apart in the
history, aggregates (computed from the readings and combined from the rollup), the aligned
view, exports and the live stream, each of which selects channels with `signal=`. A sensor that
declares its channels has batches with a reading on another channel refused whole (422), and
learns a change of them at once."""

from datetime import timedelta
from typing import Any

import pytest

from tests.experiment.factories import expect
from tests.plugins.waiting import eventually
from tests.telemetry_ingest.ingest_api import (
    accepted,
    all_ingest_errors,
    batch,
    create_sensor,
    linear,
    reading,
    refused_batch,
    send,
    stored_records,
)
from tests.telemetry_ingest.readings_api import (
    AGGREGATE,
    WIDTHS,
    aligned,
    comparable,
    export,
    get,
    history,
    physical,
    problem,
    query,
    reference,
)
from tests.telemetry_ingest.sse import query as stream_query

SECOND = timedelta(seconds=1)
ALIGNED = "/api/v1/telemetry/aligned"


@pytest.fixture
def base(clock, sensors):
    """A 10-minute mark after the profiles' start; the clock moved two hours past it."""
    start = aligned(clock.now + SECOND, timedelta(minutes=10))
    clock.advance(2 * 3600)
    return start


def on(signal: str | None, when, raw: float) -> dict[str, Any]:
    """A reading on a channel (None: no meta, the default channel)."""
    return reading(when, raw, meta={"signal": signal}) if signal else reading(when, raw)


async def send_channels(ingest, sensor, base) -> dict[str, list[tuple[Any, float]]]:
    """Interleaved readings of two channels of one sensor (and one without a signal), in two
    batches whose second comes first in time; the (instant, raw value) sent per channel."""
    late = [("temperature", 60.0 + s, 100.0 + s) for s in range(0, 30, 3)]
    late += [("pressure", 61.0 + s, -5.0 - s) for s in range(0, 30, 5)]
    early = [("temperature", float(s), 10.0 + s) for s in range(0, 50, 7)]
    early += [("pressure", s + 0.5, 1000.0 - s) for s in range(0, 50, 4)]
    early += [(None, 2.0, 7.0)]
    for batch_id, points in (("late", late), ("early", early)):
        readings = [on(signal, base + at * SECOND, raw) for signal, at, raw in points]
        await accepted(ingest, sensor["token"], batch(sensor, readings, batch_id=batch_id))
    sent: dict[str, list[tuple[Any, float]]] = {}
    for signal, at, raw in late + early:
        sent.setdefault(signal or "value", []).append((base + at * SECOND, raw))
    return sent


# --- reading ----------------------------------------------------------------------------------


async def test_history_keeps_channels_apart_and_selects_them(ingest, owner, sensor, base):
    sent = await send_channels(ingest, sensor, base)
    whole = await history(ingest, owner, query([sensor]))
    temperature = await history(ingest, owner, query([sensor], signal="temperature"))
    two = await history(
        ingest, owner, [*query([sensor]), ("signal", "pressure"), ("signal", "value")]
    )

    assert len(whole) == sum(len(values) for values in sent.values())
    assert {item["signal"] for item in whole} == {"temperature", "pressure", "value"}
    assert [item["raw_value"] for item in temperature] == [
        v for _, v in sorted(sent["temperature"])
    ]
    assert {item["signal"] for item in temperature} == {"temperature"}
    assert sorted(item["raw_value"] for item in two) == sorted(
        v for _, v in sent["pressure"] + sent["value"]
    )
    assert await history(ingest, owner, query([sensor], signal="humidity")) == []


@pytest.mark.parametrize("bucket", ["10s", "1m"])
@pytest.mark.parametrize("rollup", [True, False], ids=["rollup", "readings"])
async def test_aggregates_are_per_sensor_and_channel(
    ingest_app, owner, sensors, base, bucket, rollup
):
    client = await ingest_app(rollup_reads=rollup, rollup_interval=3600)
    sent = await send_channels(client, sensors[0], base)
    await send_channels(client, sensors[1], base)
    end = base + 10 * 60 * SECOND
    params = query([sensors[0]], start=base, end=end, bucket=bucket)

    answer = await get(client, owner, AGGREGATE, params)
    expected = {
        (sensors[0]["id"], signal): [(when, physical(value)) for when, value in values]
        for signal, values in sent.items()
    }
    assert comparable(answer["items"]) == reference(expected, WIDTHS[bucket])

    only = await get(client, owner, AGGREGATE, [*params, ("signal", "pressure")])
    pressure = {(sensors[0]["id"], "pressure"): expected[(sensors[0]["id"], "pressure")]}
    assert comparable(only["items"]) == reference(pressure, WIDTHS[bucket])

    both = await get(client, owner, AGGREGATE, query(sensors, start=base, end=end, bucket=bucket))
    assert [(item["sensor_id"], item["signal"]) for item in both["items"]] == sorted(
        (item["sensor_id"], item["signal"]) for item in both["items"]
    )
    assert {(item["sensor_id"], item["signal"]) for item in both["items"]} == {
        (sensor["id"], signal) for sensor in sensors for signal in sent
    }


async def test_aligned_view_has_a_series_per_channel(ingest, owner, sensor, sensors, base):
    await send_channels(ingest, sensor, base)
    params = query(sensors, start=base + 60 * SECOND, end=base + 64 * SECOND, fill="previous")

    answer = await get(ingest, owner, ALIGNED, params)
    series = {(s["sensor_id"], s["signal"]): s["values"] for s in answer["series"]}
    # The default channel has a value on the grid (its reading at base + 2 s, carried on).
    assert list(series) == [
        (sensor["id"], "pressure"),
        (sensor["id"], "temperature"),
        (sensor["id"], "value"),
        (sensors[1]["id"], "value"),  # a silent sensor still has its series
    ]
    assert series[(sensor["id"], "temperature")] == [physical(v) for v in (100, 100, 100, 103)]
    assert series[(sensor["id"], "pressure")] == [physical(v) for v in (952, -5, -5, -5)]
    assert series[(sensor["id"], "value")] == [physical(7.0)] * 4
    assert series[(sensors[1]["id"], "value")] == [None] * 4

    chosen = await get(ingest, owner, ALIGNED, [*params, ("signal", "temperature")])
    assert [(s["sensor_id"], s["signal"]) for s in chosen["series"]] == [
        (sensor["id"], "temperature"),
        (sensors[1]["id"], "temperature"),
    ]
    assert chosen["series"][0]["values"] == series[(sensor["id"], "temperature")]

    none = await get(ingest, owner, ALIGNED, [*params[:-1], ("fill", "none")])
    # Without fill the default channel has no value on the grid: no series of its own.
    assert [(s["sensor_id"], s["signal"]) for s in none["series"]][:3] == [
        (sensor["id"], "pressure"),
        (sensor["id"], "temperature"),
        (sensors[1]["id"], "value"),
    ]


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_selects_channels(ingest, owner, sensor, base, fmt):
    sent = await send_channels(ingest, sensor, base)
    content, _ = await export(ingest, owner, query([sensor], signal="pressure"), fmt)

    if fmt == "csv":
        header, *rows = content
        records = [dict(zip(header, row, strict=True)) for row in rows]
        values = [float(record["raw_value"]) for record in records]
    else:
        records = content
        values = [record["raw_value"] for record in records]
    assert {record["signal"] for record in records} == {"pressure"}
    assert values == [v for _, v in sorted(sent["pressure"])]


async def test_stream_sends_only_the_channels_asked_for(ingest, owner, sensor, base, streams):
    pressure = await streams(ingest, owner, stream_query([sensor], signal="pressure"))
    every = await streams(ingest, owner, stream_query([sensor]))

    await accepted(ingest, sensor["token"], batch(sensor, [on("temperature", base, 1.0)]))
    mixed = [on("pressure", base, 2.0), on("temperature", base, 3.0), on("pressure", base, 4.0)]
    await accepted(ingest, sensor["token"], batch(sensor, mixed))

    [event] = await pressure.events(1)
    assert [(r["signal"], r["raw_value"]) for r in event.readings] == [
        ("pressure", 2.0),
        ("pressure", 4.0),
    ]
    await pressure.quiet(0.2)  # the temperature-only batch was no event for it
    assert [e.raws for e in await every.events(2)] == [[1.0], [2.0, 3.0, 4.0]]


async def test_signal_filter_is_bounded(ingest, owner, sensor, base):
    params = query([sensor]) + [("signal", f"s{i}") for i in range(33)]
    await problem(ingest, owner, "/api/v1/telemetry", params, 422, "validation_failed")
    await problem(
        ingest,
        owner,
        "/api/v1/telemetry",
        query([sensor], signal="x" * 65),
        422,
        "validation_failed",
    )


# --- declared channels at the door --------------------------------------------------------------


async def declare(api, owner, sensor, *names: str) -> dict[str, Any]:
    body = {"channels": [{"name": name, "unit": "degC"} for name in names]}
    response = await api.patch(f"/api/v1/sensors/{sensor['id']}", json=body, headers=owner.headers)
    return await expect(response, 200)


async def test_undeclared_channel_refuses_the_whole_batch(
    api, ingest, owner, project_id, pgsql, clock
):
    sensor = await create_sensor(
        api,
        owner,
        project_id,
        profile=linear(a=2.0),
        channels=[{"name": "temperature", "unit": "degC"}, {"name": "pressure", "unit": "Pa"}],
    )
    now = clock.now
    body = batch(
        sensor,
        [
            on("temperature", now, 1.0),
            on("humidity", now, 2.0),
            on(None, now, 3.0),
            on("pressure", now, 4.0),
            on("humidity", now, 5.0),
        ],
        batch_id="mixed",
    )

    problem_body = await refused_batch(ingest, pgsql, sensor, body, 422, "undeclared_channel")

    assert "'humidity', 'value'" in problem_body["detail"]
    assert [(e["field"], e["type"]) for e in problem_body["errors"]] == [
        ("readings.1.meta.signal", "undeclared_channel"),
        ("readings.2.meta.signal", "undeclared_channel"),
        ("readings.4.meta.signal", "undeclared_channel"),
    ]
    [journaled] = await all_ingest_errors(api, owner, sensor["id"])
    assert (journaled["code"], journaled["readings"], journaled["rejected"]) == (
        "undeclared_channel",
        5,
        3,
    )
    # A batch-level signal counts for every reading that names none.
    await accepted(
        ingest,
        sensor["token"],
        batch(
            sensor, [reading(now, 6.0), on("temperature", now, 7.0)], meta={"signal": "pressure"}
        ),
    )
    assert sorted((r["signal"], r["raw_value"]) for r in stored_records(pgsql, sensor["id"])) == [
        ("pressure", 6.0),
        ("temperature", 7.0),
    ]


async def test_a_change_of_channels_reaches_ingest_at_once(
    api, ingest, owner, sensor, pgsql, clock
):
    one = batch(sensor, [on("humidity", clock.now, 1.0)])
    await accepted(ingest, sensor["token"], one)  # nothing declared: any channel goes

    declared = await declare(api, owner, sensor, "temperature")
    assert declared["channels"] == [{"name": "temperature", "unit": "degC"}]

    async def refused_now() -> bool:
        response = await send(
            ingest, sensor["token"], batch(sensor, [on("humidity", clock.now, 2.0)])
        )
        return response.status == 422

    await eventually(refused_now)
    await declare(api, owner, sensor, "temperature", "humidity")

    async def taken_again() -> bool:
        response = await send(
            ingest, sensor["token"], batch(sensor, [on("humidity", clock.now, 3.0)])
        )
        return response.status == 202

    await eventually(taken_again)
    response = await api.patch(
        f"/api/v1/sensors/{sensor['id']}", json={"channels": []}, headers=owner.headers
    )
    assert (await expect(response, 200))["channels"] == []
    assert [r["raw_value"] for r in stored_records(pgsql, sensor["id"])] == [1.0, 3.0]
