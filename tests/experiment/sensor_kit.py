"""Helpers of the sensor tests: requests to /api/v1/sensors and what the database holds about a
sensor."""

import uuid
from datetime import datetime
from typing import Any

from tests.experiment.factories import audit_count, expect

SENSORS = "/api/v1/sensors"
STATUSES = ("online", "delayed", "offline", "never_seen")
LINEAR = {"version": "v1", "kind": "linear", "payload": {"a": 2.0}}


def sensor_url(sensor_id: Any) -> str:
    return f"{SENSORS}/{sensor_id}"


def sensor_body(project_id: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "project_id": str(project_id),
        "name": f"sensor {uuid.uuid4().hex[:8]}",
        "type": "thermocouple",
        "input_unit": "mV",
        "display_unit": "degC",
        **overrides,
    }


async def create_sensor(client, user, project_id, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        SENSORS, json=sensor_body(project_id, **overrides), headers=user.headers
    )
    return await expect(response, 201)


async def get_sensor(client, user, sensor_id: Any, *, status: int = 200) -> Any:
    return await expect(await client.get(sensor_url(sensor_id), headers=user.headers), status)


async def list_sensors(client, user, project_id: Any, **params: Any) -> dict[str, Any]:
    query: list[tuple[str, str]] = [("project_id", str(project_id))]
    for name, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            query.append((name, str(item)))
    return await expect(await client.get(SENSORS, params=query, headers=user.headers), 200)


async def listed_ids(client, user, project_id: Any, **params: Any) -> set[str]:
    page = await list_sensors(client, user, project_id, limit=500, **params)
    assert page["next_cursor"] is None
    return {item["id"] for item in page["items"]}


async def add_project(client, user, sensor_id: Any, project_id: Any, *, status: int = 201) -> Any:
    response = await client.post(
        sensor_url(sensor_id) + "/projects",
        json={"project_id": str(project_id)},
        headers=user.headers,
    )
    return await expect(response, status)


async def bind(client, user, run_id: str, sensor_id: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/runs/{run_id}/sensors", json={"sensor_id": sensor_id}, headers=user.headers
    )
    return await expect(response, 201)


async def stop_capture(client, user, run_id: str, session_id: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/runs/{run_id}/capture-sessions/{session_id}/stop", json={}, headers=user.headers
    )
    return await expect(response, 200)


def count(pgsql, table: str, where: str = "true", params: tuple = ()) -> int:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)
        return cursor.fetchone()[0]


def sensor_row(pgsql, sensor_id: Any) -> dict[str, Any] | None:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute("SELECT * FROM sensors WHERE id = %s", (str(sensor_id),))
        row = cursor.fetchone()
        return dict(row) if row else None


def project_rows(pgsql, sensor_id: Any) -> list[tuple[str, str]]:
    """(project_id, added_by) of every project of the sensor, in the order they were added."""
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT project_id::text, added_by::text FROM sensor_projects WHERE sensor_id = %s"
            " ORDER BY added_at, project_id",
            (str(sensor_id),),
        )
        return cursor.fetchall()


def sensor_state(pgsql, sensor_id: Any) -> dict[str, Any]:
    """Everything stored about one sensor, and how many sensors and audit rows there are."""
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT token_hash, expires_at FROM sensor_tokens WHERE sensor_id = %s"
            " ORDER BY token_hash",
            (str(sensor_id),),
        )
        tokens = [(bytes(digest), expires_at) for digest, expires_at in cursor.fetchall()]
        cursor.execute(
            "SELECT id::text, version, valid_from, valid_to FROM conversion_profiles"
            " WHERE sensor_id = %s ORDER BY id",
            (str(sensor_id),),
        )
        profiles = cursor.fetchall()
        cursor.execute(
            "SELECT run_id::text, project_id::text FROM run_sensors WHERE sensor_id = %s"
            " ORDER BY run_id",
            (str(sensor_id),),
        )
        bindings = cursor.fetchall()
    return {
        "sensor": sensor_row(pgsql, sensor_id),
        "tokens": tokens,
        "projects": project_rows(pgsql, sensor_id),
        "profiles": profiles,
        "bindings": bindings,
        "sensor_count": count(pgsql, "sensors"),
        "audit_count": audit_count(pgsql),
    }


def set_heartbeat(pgsql, sensor_id: Any, at: datetime | None) -> None:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("UPDATE sensors SET last_heartbeat = %s WHERE id = %s", (at, str(sensor_id)))


def set_created_at(pgsql, sensor_id: Any, at: datetime) -> None:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("UPDATE sensors SET created_at = %s WHERE id = %s", (at, str(sensor_id)))


def without_token(sensor: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in sensor.items() if key != "token"}
