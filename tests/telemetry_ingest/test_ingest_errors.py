"""Refused telemetry batches: sensor tokens at the door (rotation, grace, revocation), the rate
limit per token, every validation problem listed by index and field, bodies that are not JSON or
too big, and the per-sensor journal of refusals that project members can read."""

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from telemetry_ingest_service.app import create_app as create_ingest_app
from tests.experiment.factories import create_experiment, create_run_in_status, expect, share_sensor
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import (
    accepted,
    all_ingest_errors,
    batch,
    create_sensor,
    eventually,
    ingest_errors,
    journal_rows,
    rate_limit,
    reading,
    readings_at,
    revoke_tokens,
    rotate_token,
    send,
    stored_counts,
    stored_records,
)

SECOND = timedelta(seconds=1)


@pytest.fixture
async def sensor(api, owner, project_id):
    return await create_sensor(api, owner, project_id)


@pytest.fixture
def ingest_app(aiohttp_client, ingest_settings, clock):
    """Telemetry ingest with other settings."""

    async def start(**settings: Any):
        return await aiohttp_client(create_ingest_app(ingest_settings(**settings), clock=clock))

    return start


async def refused(
    response, pgsql, status: int, code: str, *, stored: tuple[int, int] = (0, 0)
) -> dict[str, Any]:
    """Asserts the problem and that nothing (more) is stored; returns the problem."""
    problem = await assert_problem(response, status, code)
    assert stored_counts(pgsql) == stored
    return problem


# --- sensor tokens -------------------------------------------------------------------------------


def forged_token(sensor_id: str) -> str:
    """Well formed, naming the sensor, with a secret it never had."""
    return f"etps_{uuid.UUID(sensor_id).hex}_{secrets.token_urlsafe(32)}"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic {token}",
        "Token {token}",
        "{token}",
        "Bearer garbage",
        "Bearer etps_",
        "Bearer etps_0123_secret",
        "Bearer etps_{hex}",
        "Bearer etps_{hex}secret",
        "Bearer {token}x",
        "Bearer {forged}",
        "Bearer {user}",
    ],
)
async def test_batch_without_a_valid_sensor_token_is_unauthorized(
    api, ingest, owner, sensor, clock, pgsql, authorization
):
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(
            token=sensor["token"],
            hex=uuid.UUID(sensor["id"]).hex,
            forged=forged_token(sensor["id"]),
            user=owner.token,
        )

    response = await send(ingest, None, batch(sensor, readings_at(clock.now, 1)), headers=headers)

    await refused(response, pgsql, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="sensors"'
    # Nobody proved to be the sensor: nothing goes to its journal.
    assert await all_ingest_errors(api, owner, sensor["id"]) == []


async def test_scheme_is_case_insensitive(ingest, sensor, clock, pgsql):
    response = await send(
        ingest,
        None,
        batch(sensor, readings_at(clock.now, 1)),
        headers={"Authorization": f"bearer {sensor['token']}"},
    )

    await expect(response, 202)
    assert len(stored_records(pgsql, sensor["id"])) == 1


async def test_token_of_another_sensor_is_forbidden(
    api, ingest, owner, project_id, sensor, clock, pgsql
):
    other = await create_sensor(api, owner, project_id)

    response = await send(ingest, other["token"], batch(sensor, readings_at(clock.now, 1)))

    problem = await refused(response, pgsql, 403, "token_sensor_mismatch")
    # Journaled for the sensor that proved who it is, not for the one it named.
    (entry,) = await all_ingest_errors(api, owner, other["id"])
    assert (entry["status"], entry["code"], entry["request_id"]) == (
        403,
        "token_sensor_mismatch",
        problem["request_id"],
    )
    assert await all_ingest_errors(api, owner, sensor["id"]) == []


async def until_refused(ingest, token: str, sensor: dict[str, Any]) -> None:
    """Waits until the token is refused (the service hears of token changes asynchronously).
    Probes with an empty batch, which a valid token gets 422 for: nothing is stored meanwhile."""

    async def unauthorized():
        return (await send(ingest, token, batch(sensor, []))).status == 401

    await eventually(unauthorized)


async def test_token_rotated_without_grace_stops_working(api, ingest, owner, sensor, clock, pgsql):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    rotated = await rotate_token(api, owner, sensor["id"])
    await until_refused(ingest, sensor["token"], sensor)

    response = await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 2)))
    await refused(response, pgsql, 401, "invalid_token", stored=(1, 1))
    await accepted(ingest, rotated["token"], batch(sensor, readings_at(clock.now, 3)))
    assert [r["raw_value"] for r in stored_records(pgsql, sensor["id"])] == [1.0, 3.0]


async def test_token_rotated_with_grace_works_until_revoked(
    api, ingest, owner, sensor, clock, pgsql
):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))
    rotated = await rotate_token(api, owner, sensor["id"], grace_seconds=3600)

    async def new_token_works():
        response = await send(ingest, rotated["token"], batch(sensor, []))
        return response.status == 422

    await eventually(new_token_works)
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 2)))
    await accepted(ingest, rotated["token"], batch(sensor, readings_at(clock.now, 3)))

    await revoke_tokens(api, owner, sensor["id"])
    await until_refused(ingest, sensor["token"], sensor)
    await until_refused(ingest, rotated["token"], sensor)

    for token in (sensor["token"], rotated["token"]):
        response = await send(ingest, token, batch(sensor, readings_at(clock.now, 4)))
        await refused(response, pgsql, 401, "invalid_token", stored=(3, 3))
    assert [r["raw_value"] for r in stored_records(pgsql, sensor["id"])] == [1.0, 2.0, 3.0]


async def test_token_of_a_deleted_sensor_stops_working(api, ingest, owner, sensor, clock, pgsql):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    response = await api.delete(f"/api/v1/sensors/{sensor['id']}", headers=owner.headers)
    await expect(response, 204)
    await until_refused(ingest, sensor["token"], sensor)

    response = await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 2)))
    await refused(response, pgsql, 401, "invalid_token", stored=(1, 1))


# --- rate limit ----------------------------------------------------------------------------------


async def test_batch_past_the_burst_is_too_many_requests(
    api, ingest_app, owner, sensor, clock, pgsql
):
    ingest = await ingest_app(sensor_rate=0.001, sensor_burst=3)
    remaining = []
    for value in range(3):
        response = await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, value)))
        await expect(response, 202)
        limit, left, reset = rate_limit(response)
        assert limit == 3
        assert reset > 0
        remaining.append(left)
    assert remaining == [2, 1, 0]

    response = await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 9)))

    await refused(response, pgsql, 429, "too_many_requests", stored=(3, 3))
    assert int(response.headers["Retry-After"]) > 0
    limit, left, reset = rate_limit(response)
    assert (limit, left) == (3, 0)
    assert reset >= int(response.headers["Retry-After"])
    # Refused before the body is read: the journal does not keep it.
    assert await all_ingest_errors(api, owner, sensor["id"]) == []


async def test_every_token_has_its_own_bucket(
    api, ingest_app, owner, project_id, sensor, clock, pgsql
):
    ingest = await ingest_app(sensor_rate=0.001, sensor_burst=1)
    other = await create_sensor(api, owner, project_id)
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))
    response = await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 2)))
    await refused(response, pgsql, 429, "too_many_requests", stored=(1, 1))

    response = await send(ingest, other["token"], batch(other, readings_at(clock.now, 3)))

    await expect(response, 202)
    assert rate_limit(response)[:2] == (1, 0)
    assert len(stored_records(pgsql, other["id"])) == 1


async def test_refused_batches_count_and_carry_the_rate_limit_headers(
    api, ingest_app, owner, project_id, sensor, clock, pgsql
):
    ingest = await ingest_app(sensor_rate=0.001, sensor_burst=5, max_body_bytes=4096)
    other = await create_sensor(api, owner, project_id)
    experiment = await create_experiment(api, owner, project_id)
    unbound = await create_run_in_status(api, owner, experiment["id"], "running")
    big = batch(sensor, readings_at(clock.now, *range(200)))
    answers = [
        (await send(ingest, sensor["token"], batch(sensor, [])), 422),
        (await send(ingest, sensor["token"], b"{"), 400),
        (await send(ingest, sensor["token"], batch(other, readings_at(clock.now, 1))), 403),
        (
            await send(
                ingest,
                sensor["token"],
                batch(sensor, readings_at(clock.now, 1), run_id=unbound["id"]),
            ),
            409,
        ),
        (await send(ingest, sensor["token"], big), 413),
        (await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1))), 429),
    ]

    assert [response.status for response, _ in answers] == [status for _, status in answers]
    assert [rate_limit(response)[:2] for response, _ in answers] == [
        (5, 4),
        (5, 3),
        (5, 2),
        (5, 1),
        (5, 0),
        (5, 0),
    ]
    assert stored_counts(pgsql) == (0, 0)


async def test_unauthorized_answer_has_no_rate_limit_headers(ingest, sensor, clock):
    # Limits are per token: one that is not valid has no bucket to report on.
    response = await send(ingest, "garbage", batch(sensor, readings_at(clock.now, 1)))

    await assert_problem(response, 401, "invalid_token")
    assert "RateLimit-Remaining" not in response.headers


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


# --- the ingest error journal --------------------------------------------------------------------


async def test_refusal_is_journaled_with_what_was_wrong(
    api, ingest, owner, project_id, auth_stub, sensor, clock
):
    experiment = await create_experiment(api, owner, project_id)
    run = await create_run_in_status(api, owner, experiment["id"], "running")
    viewer = auth_stub.member(project_id, "viewer")

    response = await send(
        ingest,
        sensor["token"],
        batch(sensor, readings_at(clock.now, 1, 2), run_id=run["id"], batch_id="b-3"),
    )

    problem = await assert_problem(response, 409, "sensor_not_bound")
    page = await ingest_errors(api, viewer, sensor["id"])
    assert page["next_cursor"] is None
    (entry,) = page["items"]
    assert entry == {
        "id": entry["id"],
        "sensor_id": sensor["id"],
        "at": entry["at"],
        "status": 409,
        "code": "sensor_not_bound",
        "detail": problem["detail"],
        "batch_id": "b-3",
        "readings": 2,
        "rejected": 0,
        "errors": [],
        "request_id": response.headers["X-Request-Id"],
    }
    assert isinstance(entry["id"], int)


async def test_accepted_batches_are_not_journaled(api, ingest, owner, sensor, clock, pgsql):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    assert await all_ingest_errors(api, owner, sensor["id"]) == []
    assert journal_rows(pgsql) == []


async def test_journal_lists_newest_first_in_pages(api, ingest, auth_stub, project_id, sensor):
    for index in range(5):
        response = await send(ingest, sensor["token"], batch(sensor, [], batch_id=f"b-{index}"))
        await assert_problem(response, 422, "validation_failed")
    viewer = auth_stub.member(project_id, "viewer")

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await ingest_errors(api, viewer, sensor["id"], **params)
        pages += 1
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert [entry["batch_id"] for entry in seen] == ["b-4", "b-3", "b-2", "b-1", "b-0"]
    ids = [entry["id"] for entry in seen]
    assert ids == sorted(ids, reverse=True)


async def test_journal_is_readable_in_every_project_of_the_sensor(
    api, ingest, owner, auth_stub, sensor
):
    shared = await share_sensor(api, auth_stub, owner, sensor)
    shared_owner = auth_stub.member(shared, "owner")
    await assert_problem(await send(ingest, sensor["token"], b"{"), 400, "malformed_json")

    for user in (auth_stub.member(shared, "viewer"), shared_owner):
        (entry,) = await all_ingest_errors(api, user, sensor["id"])
        assert entry["code"] == "malformed_json"


async def test_journal_is_hidden_from_strangers(api, ingest, auth_stub, sensor):
    await assert_problem(await send(ingest, sensor["token"], b"{"), 400, "malformed_json")
    stranger = auth_stub.member(uuid.uuid4(), "owner")

    response = await api.get(
        f"/api/v1/sensors/{sensor['id']}/ingest-errors", headers=stranger.headers
    )

    await assert_problem(response, 404, "sensor_not_found")


async def test_journal_of_an_unknown_sensor_is_not_found(api, owner):
    response = await api.get(f"/api/v1/sensors/{uuid.uuid4()}/ingest-errors", headers=owner.headers)

    await assert_problem(response, 404, "sensor_not_found")


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"limit": "0"}, 422, "validation_failed"),
        ({"limit": "501"}, 422, "validation_failed"),
        ({"status": "422"}, 422, "validation_failed"),
        ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
    ],
)
async def test_journal_query_is_checked(api, owner, sensor, params, status, code):
    response = await api.get(
        f"/api/v1/sensors/{sensor['id']}/ingest-errors", params=params, headers=owner.headers
    )

    await assert_problem(response, status, code)


async def test_journals_are_kept_per_sensor(api, ingest, owner, project_id, sensor):
    other = await create_sensor(api, owner, project_id)
    await assert_problem(await send(ingest, sensor["token"], b"{"), 400, "malformed_json")
    await assert_problem(
        await send(ingest, other["token"], batch(other, [])), 422, "validation_failed"
    )

    assert [e["code"] for e in await all_ingest_errors(api, owner, sensor["id"])] == [
        "malformed_json"
    ]
    assert [e["code"] for e in await all_ingest_errors(api, owner, other["id"])] == [
        "validation_failed"
    ]


async def test_journal_keeps_only_the_newest_journal_size_entries(
    api, ingest_app, owner, sensor, pgsql
):
    ingest = await ingest_app(journal_size=3)
    for index in range(6):
        response = await send(ingest, sensor["token"], batch(sensor, [], batch_id=f"b-{index}"))
        await assert_problem(response, 422, "validation_failed")

    entries = await all_ingest_errors(api, owner, sensor["id"])

    assert [entry["batch_id"] for entry in entries] == ["b-5", "b-4", "b-3"]


async def test_journal_drops_the_oldest_entries(api, ingest_app, owner, sensor):
    ingest = await ingest_app(journal_size=3)
    for index in range(8):
        response = await send(ingest, sensor["token"], batch(sensor, [], batch_id=f"b-{index}"))
        await assert_problem(response, 422, "validation_failed")

    entries = await all_ingest_errors(api, owner, sensor["id"])

    batch_ids = [entry["batch_id"] for entry in entries]
    assert batch_ids[:3] == ["b-7", "b-6", "b-5"]
    assert "b-0" not in batch_ids
