"""Refused telemetry bodies: every validation problem listed by index and field, timestamps at
and past their limits, bodies that are not JSON, too big or hold a NUL character."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.telemetry_ingest.ingest_api import (
    accepted,
    all_ingest_errors,
    batch,
    create_sensor,
    rate_limit,
    reading,
    readings_at,
    refused,
    send,
    stored_records,
)

SECOND = timedelta(seconds=1)


@pytest.fixture
async def sensor(api, owner, project_id):
    return await create_sensor(api, owner, project_id)


# --- validation ----------------------------------------------------------------------------------


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"deeper": value}
    return value


# (id, changes to a valid body of one reading, expected [(field, type)])
# The body: {"sensor_id": …, "readings": [{"timestamp": now, "raw_value": 1.0}]}. A change sets a
# top-level field (None removes it); "reading" sets fields of the reading, "drop" removes one.
INVALID_BODIES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    (
        "unknown reading field",
        {"reading": {"unit": "mV"}},
        [("readings.0.unit", "extra_forbidden")],
    ),
    (
        "raw NaN as string",
        {"reading": {"raw_value": "NaN"}},
        [("readings.0.raw_value", "float_type")],
    ),
    (
        "raw Infinity as string",
        {"reading": {"raw_value": "Infinity"}},
        [("readings.0.raw_value", "float_type")],
    ),
    (
        "raw -Infinity as string",
        {"reading": {"raw_value": "-Infinity"}},
        [("readings.0.raw_value", "float_type")],
    ),
    (
        "raw number as string",
        {"reading": {"raw_value": "1.5"}},
        [("readings.0.raw_value", "float_type")],
    ),
    ("raw true", {"reading": {"raw_value": True}}, [("readings.0.raw_value", "float_type")]),
    ("raw false", {"reading": {"raw_value": False}}, [("readings.0.raw_value", "float_type")]),
    ("raw null", {"reading": {"raw_value": None}}, [("readings.0.raw_value", "float_type")]),
    ("raw list", {"reading": {"raw_value": [1.0]}}, [("readings.0.raw_value", "float_type")]),
    (
        "raw integer past 2**53",
        {"reading": {"raw_value": 2**53 + 1}},
        [("readings.0.raw_value", "finite_number")],
    ),
    ("raw missing", {"drop": "raw_value"}, [("readings.0.raw_value", "float_type")]),
    (
        "naive timestamp",
        {"reading": {"timestamp": "2026-01-01T12:00:00"}},
        [("readings.0.timestamp", "timezone_aware")],
    ),
    (
        "timestamp before 1970",
        {"reading": {"timestamp": "1969-12-31T23:59:59.999999Z"}},
        [("readings.0.timestamp", "datetime_past")],
    ),
    (
        "timestamp year 1",
        {"reading": {"timestamp": "0001-01-01T00:00:00+01:00"}},
        [("readings.0.timestamp", "datetime_past")],
    ),
    (
        "timestamp not a date",
        {"reading": {"timestamp": "yesterday"}},
        [("readings.0.timestamp", "datetime_parsing")],
    ),
    (
        "timestamp a number",
        {"reading": {"timestamp": 1767225600}},
        [("readings.0.timestamp", "datetime_type")],
    ),
    ("timestamp missing", {"drop": "timestamp"}, [("readings.0.timestamp", "datetime_type")]),
    ("reading not an object", {"readings": [5]}, [("readings.0", "model_type")]),
    (
        "reading meta not an object",
        {"reading": {"meta": "rig A"}},
        [("readings.0.meta", "dict_type")],
    ),
    ("reading meta a list", {"reading": {"meta": [1]}}, [("readings.0.meta", "dict_type")]),
    (
        "empty signal",
        {"reading": {"meta": {"signal": ""}}},
        [("readings.0.meta.signal", "string_type")],
    ),
    (
        "long signal",
        {"reading": {"meta": {"signal": "s" * 65}}},
        [("readings.0.meta.signal", "string_type")],
    ),
    (
        "numeric signal",
        {"reading": {"meta": {"signal": 7}}},
        [("readings.0.meta.signal", "string_type")],
    ),
    (
        "meta too deep",
        {"reading": {"meta": {"a": nested(40)}}},
        [("readings.0.meta", "json_too_deep")],
    ),
    ("batch meta not an object", {"meta": ["rig A"]}, [("meta", "dict_type")]),
    ("batch meta signal", {"meta": {"signal": ""}}, [("meta.signal", "string_type")]),
    ("empty readings", {"readings": []}, [("readings", "too_short")]),
    ("readings not a list", {"readings": {"0": {}}}, [("readings", "list_type")]),
    ("readings missing", {"readings": None}, [("readings", "list_type")]),
    ("sensor_id missing", {"sensor_id": None}, [("sensor_id", "missing")]),
    ("sensor_id not a uuid", {"sensor_id": "sensor-1"}, [("sensor_id", "uuid_parsing")]),
    ("sensor_id a number", {"sensor_id": 42}, [("sensor_id", "uuid_parsing")]),
    ("run_id not a uuid", {"run_id": "run-1"}, [("run_id", "uuid_parsing")]),
    (
        "capture_session_id not a uuid",
        {"capture_session_id": 5},
        [("capture_session_id", "uuid_parsing")],
    ),
    ("unknown top-level field", {"unit": "mV"}, [("unit", "extra_forbidden")]),
    ("empty batch_id", {"batch_id": ""}, [("batch_id", "string_type")]),
    ("long batch_id", {"batch_id": "b" * 201}, [("batch_id", "string_type")]),
    ("numeric batch_id", {"batch_id": 17}, [("batch_id", "string_type")]),
]


def invalid_body(sensor: dict[str, Any], now, changes: dict[str, Any]) -> Any:
    one = reading(now, 1.0)
    changes = dict(changes)
    one.update(changes.pop("reading", {}))
    one.pop(changes.pop("drop", None), None)
    body: dict[str, Any] = batch(sensor, [one])
    for name, value in changes.items():
        if value is None:
            body.pop(name)
        else:
            body[name] = value
    return body


@pytest.mark.parametrize(
    ("changes", "expected"),
    [pytest.param(changes, expected, id=name) for name, changes, expected in INVALID_BODIES],
)
async def test_invalid_batch_lists_each_bad_field_and_stores_nothing(
    api, ingest, owner, sensor, clock, pgsql, changes, expected
):
    body = invalid_body(sensor, clock.now, changes)

    response = await send(ingest, sensor["token"], body)

    problem = await refused(response, pgsql, 422, "validation_failed")
    assert [(e["field"], e["type"]) for e in problem["errors"]] == expected
    assert {e["in"] for e in problem["errors"]} == {"body"}
    assert all(e["message"] for e in problem["errors"])
    (entry,) = await all_ingest_errors(api, owner, sensor["id"])
    assert (entry["status"], entry["code"], entry["errors"]) == (
        422,
        "validation_failed",
        problem["errors"],
    )


async def test_invalid_body_that_is_not_an_object_is_refused(api, ingest, owner, sensor, pgsql):
    response = await send(ingest, sensor["token"], [{"sensor_id": sensor["id"]}])

    problem = await refused(response, pgsql, 422, "validation_failed")
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [("", "model_type")]
    (entry,) = await all_ingest_errors(api, owner, sensor["id"])
    assert (entry["readings"], entry["rejected"]) == (0, 0)


async def test_several_bad_readings_are_listed_together(api, ingest, owner, sensor, clock, pgsql):
    now = clock.now
    body = batch(
        sensor,
        [
            reading(now, 1.0),
            reading(now, True),
            {"timestamp": "2026-01-01T00:00:00", "raw_value": 2.0, "unit": "mV"},
            reading(now, 3.0),
            reading(now + 400 * SECOND, 4.0, meta={"signal": ""}),
        ],
        batch_id="b-9",
    )

    response = await send(ingest, sensor["token"], body)

    problem = await refused(response, pgsql, 422, "validation_failed")
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [
        ("readings.1.raw_value", "float_type"),
        ("readings.2.unit", "extra_forbidden"),
        ("readings.2.timestamp", "timezone_aware"),
        ("readings.4.timestamp", "datetime_future"),
        ("readings.4.meta.signal", "string_type"),
    ]
    assert problem["detail"] == "Nothing was stored: 3 of 5 readings are invalid."
    (entry,) = await all_ingest_errors(api, owner, sensor["id"])
    assert (entry["readings"], entry["rejected"], entry["batch_id"]) == (5, 3, "b-9")


async def test_at_most_a_hundred_errors_are_listed_but_all_bad_readings_counted(
    api, ingest, owner, sensor, clock, pgsql
):
    body = batch(sensor, [reading(clock.now, "x") for _ in range(150)])

    response = await send(ingest, sensor["token"], body)

    problem = await refused(response, pgsql, 422, "validation_failed")
    assert len(problem["errors"]) == 100
    assert problem["errors"][-1]["field"] == "readings.99.raw_value"
    (entry,) = await all_ingest_errors(api, owner, sensor["id"])
    assert (entry["readings"], entry["rejected"], len(entry["errors"])) == (150, 150, 100)


async def test_timestamps_at_the_limits_are_accepted(ingest_app, sensor, clock, pgsql):
    ingest = await ingest_app(max_future_seconds=10)
    earliest = "1970-01-01T00:00:00Z"
    latest = clock.now + 10 * SECOND
    body = batch(sensor, [reading(earliest, 1.0), reading(latest, 2.0)])

    await accepted(ingest, sensor["token"], body)

    rows = stored_records(pgsql, sensor["id"])
    assert [r["timestamp"] for r in rows] == [datetime(1970, 1, 1, tzinfo=UTC), latest]


async def test_timestamp_past_max_future_seconds_is_refused(ingest_app, sensor, clock, pgsql):
    ingest = await ingest_app(max_future_seconds=10)
    too_late = clock.now + timedelta(seconds=10, microseconds=1)

    response = await send(ingest, sensor["token"], batch(sensor, [reading(too_late, 1.0)]))

    problem = await refused(response, pgsql, 422, "validation_failed")
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [
        ("readings.0.timestamp", "datetime_future")
    ]


async def test_future_limit_follows_the_service_clock(ingest, sensor, clock, pgsql):
    ahead = clock.now + 600 * SECOND
    response = await send(ingest, sensor["token"], batch(sensor, [reading(ahead, 1.0)]))
    await refused(response, pgsql, 422, "validation_failed")

    clock.advance(600)

    await accepted(ingest, sensor["token"], batch(sensor, [reading(ahead, 1.0)]))
    assert len(stored_records(pgsql, sensor["id"])) == 1


async def test_batch_with_too_many_readings_is_refused(
    api, ingest_app, owner, sensor, clock, pgsql
):
    ingest = await ingest_app(max_batch_readings=3)
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1, 2, 3)))

    response = await send(
        ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1, 2, 3, 4))
    )

    problem = await refused(response, pgsql, 422, "validation_failed", stored=(1, 3))
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [("readings", "too_long")]
    (entry,) = await all_ingest_errors(api, owner, sensor["id"])
    assert (entry["readings"], entry["rejected"]) == (4, 0)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b'{"readings": [NaN]}', b'{"raw_value": 1e999}', b"\xff\xfe"],
    ids=["empty", "truncated", "text", "NaN", "overflow", "not utf-8"],
)
async def test_body_that_is_not_json_is_malformed(api, ingest, owner, sensor, pgsql, body):
    response = await send(ingest, sensor["token"], body)

    await refused(response, pgsql, 400, "malformed_json")
    (entry,) = await all_ingest_errors(api, owner, sensor["id"])
    assert (entry["status"], entry["code"], entry["readings"], entry["batch_id"]) == (
        400,
        "malformed_json",
        0,
        None,
    )


async def test_body_over_max_body_bytes_is_too_large(api, ingest_app, owner, sensor, clock, pgsql):
    ingest = await ingest_app(max_body_bytes=2048)
    small = batch(sensor, readings_at(clock.now, *range(10)))
    big = batch(sensor, readings_at(clock.now, *range(100)))

    response = await send(ingest, sensor["token"], big)

    await refused(response, pgsql, 413, "payload_too_large")
    assert rate_limit(response)[0] > 0
    await accepted(ingest, sensor["token"], small)
    assert len(stored_records(pgsql, sensor["id"])) == 10
    (entry,) = await all_ingest_errors(api, owner, sensor["id"])
    assert (entry["status"], entry["code"], entry["readings"]) == (413, "payload_too_large", 0)


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("reading meta value", "readings.0.meta.note"),
        ("reading meta key", "readings.0.meta"),
        ("batch meta value", "meta.rig"),
        ("signal", "readings.0.meta.signal"),
    ],
)
async def test_nul_character_in_meta_is_refused(
    api, ingest, owner, sensor, clock, pgsql, where, field
):
    one = reading(clock.now, 1.0)
    body = batch(sensor, [one])
    if where == "reading meta value":
        one["meta"] = {"note": "before\u0000after"}
    elif where == "reading meta key":
        one["meta"] = {"no\u0000te": "x"}
    elif where == "batch meta value":
        body["meta"] = {"rig": "\u0000"}
    else:
        one["meta"] = {"signal": "temp\u0000"}

    response = await send(ingest, sensor["token"], body)

    problem = await refused(response, pgsql, 422, "validation_failed")
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [(field, "string_nul")]
    (entry,) = await all_ingest_errors(api, owner, sensor["id"])
    assert (entry["status"], entry["errors"]) == (422, problem["errors"])


async def test_escaped_backslash_before_u0000_is_not_a_nul(ingest, sensor, clock, pgsql):
    body = batch(sensor, [reading(clock.now, 1.0, meta={"path": "C:\\u0000"})])

    await accepted(ingest, sensor["token"], body)

    (row,) = stored_records(pgsql, sensor["id"])
    assert row["meta"] == {"path": "C:\\u0000"}


async def test_nul_character_in_batch_id_is_refused_and_journaled(
    api, ingest, owner, sensor, clock, pgsql
):
    body = batch(sensor, readings_at(clock.now, 1.0), batch_id="b-\u00001")

    response = await send(ingest, sensor["token"], body)

    problem = await refused(response, pgsql, 422, "validation_failed")
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [("batch_id", "string_nul")]
    (entry,) = await all_ingest_errors(api, owner, sensor["id"])
    assert entry["request_id"] == problem["request_id"]
