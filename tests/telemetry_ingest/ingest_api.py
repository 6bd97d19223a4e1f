"""Helpers for the telemetry ingest tests: sensors, profiles and bindings made through the
experiment API, batches sent with a sensor token, and what the database holds afterwards.

sensor = await create_sensor(api, owner, project_id, profile=linear(a=2.0))
response = await send(ingest, sensor["token"], batch(sensor, [reading(clock.now, 1.5)]))
rows = stored_records(pgsql, sensor["id"])
"""

import uuid
from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from tests.experiment.factories import (
    RUN_STATUS_PATHS,
    create_run_in_status,
    expect,
    set_run_status,
)
from tests.plugins.auth_stub import StubUser
from tests.problems import assert_problem

TELEMETRY = "/api/v1/telemetry"
SENSORS = "/api/v1/sensors"
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def iso(instant: datetime) -> str:
    return instant.isoformat()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def linear(a: float, b: float = 0.0, *, version: str = "v1") -> dict[str, Any]:
    return {"version": version, "kind": "linear", "payload": {"a": a, "b": b}}


def polynomial(*coefficients: float, version: str = "v1") -> dict[str, Any]:
    return {"version": version, "kind": "polynomial", "payload": {"coefficients": coefficients}}


def reading(timestamp: datetime | str, raw_value: Any, **fields: Any) -> dict[str, Any]:
    when = timestamp if isinstance(timestamp, str) else iso(timestamp)
    return {"timestamp": when, "raw_value": raw_value, **fields}


def batch(sensor: dict[str, Any], readings: list[Any], **fields: Any) -> dict[str, Any]:
    return {"sensor_id": sensor["id"], "readings": readings, **fields}


def readings_at(start: datetime, *raw_values: float, step: float = 1.0) -> list[dict[str, Any]]:
    """One reading per value, `step` seconds apart from `start` on."""
    return [
        reading(start + timedelta(seconds=step * index), value)
        for index, value in enumerate(raw_values)
    ]


# --- the experiment API --------------------------------------------------------------------------


async def create_sensor(
    api: TestClient,
    user: StubUser,
    project_id: Any,
    *,
    profile: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A new sensor (with its token in `token`), its first profile published if given."""
    body = {
        "project_id": str(project_id),
        "name": f"sensor {uuid.uuid4().hex[:8]}",
        "type": "thermocouple",
        "input_unit": "mV",
        "display_unit": "degC",
        **overrides,
    }
    if profile is not None:
        body["conversion_profile"] = profile
    return await expect(await api.post(SENSORS, json=body, headers=user.headers), 201)


async def get_sensor(api: TestClient, user: StubUser, sensor_id: Any) -> dict[str, Any]:
    return await expect(await api.get(f"{SENSORS}/{sensor_id}", headers=user.headers), 200)


async def publish_profile(
    api: TestClient, user: StubUser, sensor_id: Any, profile: dict[str, Any]
) -> dict[str, Any]:
    """Creates the profile and makes it valid from the clock's now on."""
    url = f"{SENSORS}/{sensor_id}/conversion-profiles"
    created = await expect(await api.post(url, json=profile, headers=user.headers), 201)
    response = await api.post(f"{url}/{created['id']}/publish", json={}, headers=user.headers)
    return await expect(response, 200)


async def bind(api: TestClient, user: StubUser, run_id: Any, sensor_id: Any) -> dict[str, Any]:
    response = await api.post(
        f"/api/v1/runs/{run_id}/sensors", json={"sensor_id": str(sensor_id)}, headers=user.headers
    )
    return await expect(response, 201)


async def stop_capture(
    api: TestClient, user: StubUser, run_id: Any, session_id: Any, **body: Any
) -> dict[str, Any]:
    response = await api.post(
        f"/api/v1/runs/{run_id}/capture-sessions/{session_id}/stop",
        json=body,
        headers=user.headers,
    )
    return await expect(response, 200)


async def rotate_token(
    api: TestClient, user: StubUser, sensor_id: Any, *, grace_seconds: int = 0
) -> dict[str, Any]:
    response = await api.post(
        f"{SENSORS}/{sensor_id}/rotate-token",
        json={"grace_seconds": grace_seconds},
        headers=user.headers,
    )
    return await expect(response, 200)


async def revoke_tokens(api: TestClient, user: StubUser, sensor_id: Any) -> dict[str, Any]:
    response = await api.post(f"{SENSORS}/{sensor_id}/revoke-token", headers=user.headers)
    return await expect(response, 200)


async def ingest_errors(
    api: TestClient, user: StubUser, sensor_id: Any, *, status: int = 200, **params: Any
) -> Any:
    response = await api.get(
        f"{SENSORS}/{sensor_id}/ingest-errors",
        params={name: str(value) for name, value in params.items()},
        headers=user.headers,
    )
    return await expect(response, status)


async def all_ingest_errors(
    api: TestClient, user: StubUser, sensor_id: Any
) -> list[dict[str, Any]]:
    page = await ingest_errors(api, user, sensor_id, limit=500)
    assert page["next_cursor"] is None
    return page["items"]


async def bound_run(
    api: TestClient,
    user: StubUser,
    experiment: dict[str, Any],
    sensor: dict[str, Any],
    status: str = "running",
) -> dict[str, Any]:
    """A new run of the experiment with the sensor bound to it, then brought to `status`."""
    run = await create_run_in_status(api, user, experiment["id"], "draft")
    await bind(api, user, run["id"], sensor["id"])
    for step in RUN_STATUS_PATHS[status]:
        run = await set_run_status(api, user, run["id"], step)
    return run


# --- the ingest API ------------------------------------------------------------------------------


async def send(ingest: TestClient, token: str | None, body: Any, **kwargs: Any) -> Any:
    """POSTs a batch: `body` as JSON, or bytes as they are."""
    headers = {} if token is None else bearer(token)
    headers.update(kwargs.pop("headers", {}))
    if isinstance(body, bytes | str):
        headers.setdefault("Content-Type", "application/json")
        return await ingest.post(TELEMETRY, data=body, headers=headers, **kwargs)
    return await ingest.post(TELEMETRY, json=body, headers=headers, **kwargs)


async def accepted(ingest: TestClient, token: str, body: Any) -> dict[str, Any]:
    """Sends a batch that must be accepted; returns the answer."""
    return await expect(await send(ingest, token, body), 202)


async def refused_batch(
    ingest: TestClient, pgsql: Any, sensor: dict[str, Any], body: Any, status: int, code: str
) -> dict[str, Any]:
    """Sends a batch that must be refused with nothing stored; returns the problem."""
    before = stored_counts(pgsql)
    problem = await assert_problem(await send(ingest, sensor["token"], body), status, code)
    assert stored_counts(pgsql) == before
    return problem


async def refused(
    response: Any, pgsql: Any, status: int, code: str, *, stored: tuple[int, int] = (0, 0)
) -> dict[str, Any]:
    """Asserts the problem and that nothing (more) is stored; returns the problem."""
    problem = await assert_problem(response, status, code)
    assert stored_counts(pgsql) == stored
    return problem


def rate_limit(response: Any) -> tuple[int, int, int]:
    """(limit, remaining, reset) from the RateLimit-* headers of an answer."""
    limit, remaining, reset = (int(response.headers[name]) for name in RATE_LIMIT_HEADERS)
    return limit, remaining, reset


# --- what the read routes show ------------------------------------------------------------------

# A reading's fields in the history, exports and live events, in this order.
READING_FIELDS = [
    "timestamp",
    "received_at",
    "sensor_id",
    "raw_value",
    "physical_value",
    "signal",
    "conversion_status",
    "late",
    "run_id",
    "capture_session_id",
    "meta",
]
RAW_LAYER_FIELDS = [name for name in READING_FIELDS if name != "physical_value"]


# --- what is stored ------------------------------------------------------------------------------


def attachments(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """(run_id, capture_session_id, late) of stored readings, each once."""
    return {(r["run_id"], r["capture_session_id"], r["late"]) for r in rows}


RECORD_FIELDS = (
    "batch_id, seq, sensor_id::text, run_id::text, capture_session_id::text, timestamp,"
    " received_at, raw_value, physical_value, conversion_status, profile_id::text, late, meta,"
    " signal"
)


def stored_records(pgsql: Any, sensor_id: Any = None) -> list[dict[str, Any]]:
    """The stored readings (of one sensor, or all), in the order they were stored."""
    where, params = ("WHERE sensor_id = %s", (str(sensor_id),)) if sensor_id else ("", ())
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            f"SELECT {RECORD_FIELDS} FROM telemetry_records {where} ORDER BY batch_id, seq",
            params,
        )
        return [dict(row) for row in cursor]


def stored_batches(pgsql: Any, sensor_id: Any = None) -> list[dict[str, Any]]:
    where, params = ("WHERE sensor_id = %s", (str(sensor_id),)) if sensor_id else ("", ())
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT id, sensor_id::text, client_batch_id, run_id::text,"
            " capture_session_id::text, readings, first_timestamp, last_timestamp, received_at,"
            f" spooled FROM telemetry_batches {where} ORDER BY id",
            params,
        )
        return [dict(row) for row in cursor]


def stored_counts(pgsql: Any) -> tuple[int, int]:
    """(batches, readings) stored, all sensors together."""
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM telemetry_batches),"
            " (SELECT count(*) FROM telemetry_records)"
        )
        return cursor.fetchone()


def journal_rows(pgsql: Any, sensor_id: Any = None) -> list[dict[str, Any]]:
    """The ingest error journal as stored, newest first."""
    where, params = ("WHERE sensor_id = %s", (str(sensor_id),)) if sensor_id else ("", ())
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT sensor_id::text, status, code, batch_id, readings, rejected, errors,"
            f" request_id FROM ingest_errors {where} ORDER BY id DESC",
            params,
        )
        return [dict(row) for row in cursor]
