"""Sensors: creation, listing, liveness on the service's clock, changes, deletion, the projects
a sensor is shared with, who may do what, and what bad requests leave behind."""

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from backend_common.keys import DATABASE, SETTINGS
from experiment_service.app import create_app
from tests.experiment.factories import (
    audit_count,
    audit_rows,
    create_experiment,
    create_run_in_status,
    expect,
    start_capture,
)
from tests.problems import assert_problem
from tests.tokens import SigningKey

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


# --- creation ------------------------------------------------------------------------------------


async def test_create_returns_the_sensor_and_stores_it_in_its_home_project(
    client, editor, project_id, pgsql
):
    body = {
        "project_id": str(project_id),
        "name": "Inlet pressure",
        "type": "pressure",
        "input_unit": "V",
        "display_unit": "kPa",
        "description": "upstream of the nozzle",
    }

    response = await client.post(SENSORS, json=body, headers=editor.headers)

    sensor = await expect(response, 201)
    assert response.headers["Location"] == sensor_url(sensor["id"])
    assert response.headers["Cache-Control"] == "no-store"
    assert {key: sensor[key] for key in body} == body
    assert sensor["project_ids"] == [str(project_id)]
    assert sensor["created_by"] == str(editor.id)
    assert sensor["status"] == "never_seen"
    assert sensor["last_heartbeat"] is None
    assert sensor["active_profile_id"] is None
    assert sensor["token"].startswith("etps_")
    row = sensor_row(pgsql, sensor["id"])
    assert {key: row[key] for key in body if key != "project_id"} == {
        key: value for key, value in body.items() if key != "project_id"
    }
    assert str(row["project_id"]) == str(project_id)
    assert str(row["created_by"]) == str(editor.id)
    assert row["last_heartbeat"] is None
    assert project_rows(pgsql, sensor["id"]) == [(str(project_id), str(editor.id))]
    fetched = await get_sensor(client, editor, sensor["id"])
    assert fetched == without_token(sensor)


async def test_create_with_only_required_fields_defaults_the_description(
    client, editor, project_id, pgsql
):
    sensor = await create_sensor(client, editor, project_id)

    assert sensor["description"] == ""
    assert sensor_row(pgsql, sensor["id"])["description"] == ""


async def test_create_writes_an_audit_row_without_the_token(client, editor, project_id, pgsql):
    sensor = await create_sensor(client, editor, project_id)

    (row,) = audit_rows(pgsql, sensor["id"])

    assert row["action"] == "sensor.created"
    assert row["entity_type"] == "sensor"
    assert row["project_id"] == str(project_id)
    assert row["actor_id"] == str(editor.id)
    assert row["actor_role"] == "editor"
    assert row["before"] is None
    assert row["after"] == without_token(sensor)
    assert "token" not in row["after"]
    assert sensor["token"] not in str(row)
    assert sensor["token"][-12:] not in str(row)


async def test_create_with_a_first_profile_makes_it_active_at_once(
    client, editor, project_id, pgsql, clock
):
    sensor = await create_sensor(
        client,
        editor,
        project_id,
        conversion_profile={**LINEAR, "description": "bench calibration"},
    )

    assert sensor["active_profile_id"] is not None
    profile = await expect(
        await client.get(
            sensor_url(sensor["id"]) + f"/conversion-profiles/{sensor['active_profile_id']}",
            headers=editor.headers,
        ),
        200,
    )
    assert profile["status"] == "active"
    assert profile["version"] == "v1"
    assert profile["kind"] == "linear"
    assert profile["payload"] == {"a": 2.0, "b": 0.0}
    assert profile["description"] == "bench calibration"
    assert datetime.fromisoformat(profile["valid_from"]) == clock.now
    assert profile["valid_to"] is None
    assert profile["published_by"] == str(editor.id)
    assert profile["created_by"] == str(editor.id)
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT id::text, valid_from, valid_to FROM conversion_profiles WHERE sensor_id = %s",
            (sensor["id"],),
        )
        assert cursor.fetchall() == [(sensor["active_profile_id"], clock.now, None)]
    assert (await get_sensor(client, editor, sensor["id"]))["active_profile_id"] == profile["id"]


async def test_create_with_a_first_profile_audits_the_profile(client, editor, project_id, pgsql):
    sensor = await create_sensor(client, editor, project_id, conversion_profile=LINEAR)

    rows = audit_rows(pgsql, sensor["active_profile_id"])

    assert rows, "the first profile has no audit row"
    assert rows[-1]["action"] == "conversion_profile.activated"
    assert rows[-1]["after"]["status"] == "active"
    assert rows[-1]["after"]["payload"] == {"a": 2.0, "b": 0.0}
    for row in rows:
        assert row["entity_type"] == "conversion_profile"
        assert row["parent_id"] == sensor["id"]
        assert row["project_id"] == str(project_id)
        assert (row["actor_id"], row["actor_role"]) == (str(editor.id), "editor")
    assert sensor["token"][-12:] not in str(rows)


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({**LINEAR, "payload": {"a": "steep"}}, "conversion_profile.payload.a"),
        ({**LINEAR, "payload": {}}, "conversion_profile.payload.a"),
        ({**LINEAR, "kind": "cubic"}, "conversion_profile.kind"),
        ({"kind": "linear", "payload": {"a": 1}}, "conversion_profile.version"),
        ({**LINEAR, "version": ""}, "conversion_profile.version"),
        ({**LINEAR, "valid_from": "2030-01-01T00:00:00Z"}, "conversion_profile.valid_from"),
    ],
)
async def test_create_with_an_invalid_first_profile_stores_nothing(
    client, editor, project_id, pgsql, profile, field
):
    response = await client.post(
        SENSORS,
        json=sensor_body(project_id, conversion_profile=profile),
        headers=editor.headers,
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem
    assert count(pgsql, "sensors") == 0
    assert count(pgsql, "conversion_profiles") == 0
    assert audit_count(pgsql) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"name": None}, "name"),
        ({"type": ""}, "type"),
        ({"type": "t" * 101}, "type"),
        ({"input_unit": "u" * 51}, "input_unit"),
        ({"display_unit": ["degC"]}, "display_unit"),
        ({"description": "d" * 10001}, "description"),
        ({"description": "nul\x00"}, "description"),
        ({"project_id": "not-a-uuid"}, "project_id"),
        ({"colour": "red"}, "colour"),
        ({"token": "etps_mine"}, "token"),
        ({"status": "online"}, "status"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_create_with_an_invalid_body_names_the_field_and_stores_nothing(
    client, editor, project_id, pgsql, overrides, field
):
    response = await client.post(
        SENSORS, json={**sensor_body(project_id), **overrides}, headers=editor.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == [field], problem
    assert count(pgsql, "sensors") == 0
    assert audit_count(pgsql) == 0


@pytest.mark.parametrize("missing", ["project_id", "name", "type", "input_unit", "display_unit"])
async def test_create_without_a_required_field_names_it(client, editor, project_id, pgsql, missing):
    body = sensor_body(project_id)
    del body[missing]

    response = await client.post(SENSORS, json=body, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == [missing]
    assert count(pgsql, "sensors") == 0


# --- idempotent creation -------------------------------------------------------------------------


async def test_create_replay_returns_the_same_sensor_without_its_token(
    client, editor, project_id, pgsql
):
    body = sensor_body(project_id, conversion_profile=LINEAR)
    headers = {**editor.headers, "Idempotency-Key": "sensor-create-1"}
    first = await client.post(SENSORS, json=body, headers=headers)
    created = await expect(first, 201)
    assert "Idempotent-Replayed" not in first.headers

    for _ in range(2):
        again = await client.post(SENSORS, json=body, headers=headers)
        replayed = await expect(again, 201)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["Location"] == first.headers["Location"]
        assert replayed["id"] == created["id"]
        assert replayed["token"] is None
        assert replayed == {**created, "token": None}

    assert count(pgsql, "sensors") == 1
    assert count(pgsql, "sensor_tokens") == 1
    assert count(pgsql, "conversion_profiles") == 1
    assert count(pgsql, "sensor_projects") == 1
    assert [row["action"] for row in audit_rows(pgsql, created["id"])] == ["sensor.created"]
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT body FROM request_idempotency")
        (stored,) = [bytes(body) for (body,) in cursor.fetchall()]
    assert created["token"].encode() not in stored
    assert created["token"][-12:].encode() not in stored
    assert b'"token":null' in stored


async def test_create_with_a_reused_key_for_another_body_is_refused(
    client, editor, project_id, pgsql
):
    headers = {**editor.headers, "Idempotency-Key": "sensor-create-2"}
    await expect(await client.post(SENSORS, json=sensor_body(project_id), headers=headers), 201)

    response = await client.post(SENSORS, json=sensor_body(project_id), headers=headers)

    await assert_problem(response, 422, "idempotency_key_reused")
    assert count(pgsql, "sensors") == 1


async def test_create_concurrently_with_one_key_creates_one_sensor(
    client, editor, project_id, pgsql
):
    body = sensor_body(project_id)
    headers = {**editor.headers, "Idempotency-Key": "sensor-create-3"}

    responses = await asyncio.gather(
        *(client.post(SENSORS, json=body, headers=headers) for _ in range(5))
    )

    sensors = [await expect(response, 201) for response in responses]
    assert len({sensor["id"] for sensor in sensors}) == 1
    assert sum(sensor["token"] is not None for sensor in sensors) == 1
    assert count(pgsql, "sensors") == 1
    assert count(pgsql, "sensor_tokens") == 1


async def test_add_project_replay_links_once(client, owner, project_id, auth_stub, pgsql):
    sensor = await create_sensor(client, owner, project_id)
    other = uuid.uuid4()
    auth_stub.grant(owner, other, "editor")
    headers = {**owner.headers, "Idempotency-Key": "share-1"}
    url = sensor_url(sensor["id"]) + "/projects"

    first = await client.post(url, json={"project_id": str(other)}, headers=headers)
    again = await client.post(url, json={"project_id": str(other)}, headers=headers)

    assert await expect(again, 201) == await expect(first, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(project_rows(pgsql, sensor["id"])) == 2
    actions = [row["action"] for row in audit_rows(pgsql, sensor["id"])]
    assert actions == ["sensor.created", "sensor.project_added"]


# --- listing -------------------------------------------------------------------------------------


async def test_list_shows_home_and_shared_sensors_of_the_project(
    client, owner, project_id, auth_stub
):
    other = uuid.uuid4()
    other_owner = auth_stub.member(other, "owner")
    auth_stub.grant(other_owner, project_id, "editor")
    home_a = await create_sensor(client, owner, project_id)
    home_b = await create_sensor(client, owner, project_id)
    shared_in = await create_sensor(client, other_owner, other)
    elsewhere = await create_sensor(client, other_owner, other)
    await add_project(client, other_owner, shared_in["id"], project_id)
    viewer = auth_stub.member(project_id, "viewer")
    other_viewer = auth_stub.member(other, "viewer")

    page = await list_sensors(client, viewer, project_id)

    assert {item["id"] for item in page["items"]} == {home_a["id"], home_b["id"], shared_in["id"]}
    assert page["next_cursor"] is None
    (listed_shared,) = [item for item in page["items"] if item["id"] == shared_in["id"]]
    assert listed_shared["project_id"] == str(other)
    assert listed_shared["project_ids"] == [str(other), str(project_id)]
    assert all("token" not in item for item in page["items"])
    assert await listed_ids(client, other_viewer, other) == {shared_in["id"], elsewhere["id"]}


async def test_list_of_a_project_without_sensors_is_empty(client, owner, project_id):
    assert await list_sensors(client, owner, project_id) == {"items": [], "next_cursor": None}


async def test_list_items_match_single_gets(client, owner, project_id, pgsql, clock):
    sensor = await create_sensor(client, owner, project_id, conversion_profile=LINEAR)
    set_heartbeat(pgsql, sensor["id"], clock.now - timedelta(seconds=30))

    (item,) = (await list_sensors(client, owner, project_id))["items"]

    assert item == await get_sensor(client, owner, sensor["id"])
    assert item["status"] == "delayed"
    assert item["active_profile_id"] == sensor["active_profile_id"]


async def test_list_filters_by_one_or_more_types(client, owner, project_id):
    by_type = {}
    for sensor_type in ("thermocouple", "pressure", "flow", "pressure"):
        sensor = await create_sensor(client, owner, project_id, type=sensor_type)
        by_type.setdefault(sensor_type, set()).add(sensor["id"])

    assert await listed_ids(client, owner, project_id, type="pressure") == by_type["pressure"]
    assert (
        await listed_ids(client, owner, project_id, type=["pressure", "flow"])
        == by_type["pressure"] | by_type["flow"]
    )
    assert await listed_ids(client, owner, project_id, type="humidity") == set()
    assert await listed_ids(client, owner, project_id, type="PRESSURE") == set()


async def test_list_searches_name_and_description_case_insensitively(client, owner, project_id):
    inlet = await create_sensor(client, owner, project_id, name="Inlet Pressure")
    outlet = await create_sensor(
        client, owner, project_id, name="Outlet", description="measures PRESSURE drop"
    )
    await create_sensor(client, owner, project_id, name="Thermo", description="air")

    assert await listed_ids(client, owner, project_id, q="pressure") == {inlet["id"], outlet["id"]}
    assert await listed_ids(client, owner, project_id, q="INLET") == {inlet["id"]}
    assert await listed_ids(client, owner, project_id, q="drop") == {outlet["id"]}
    assert await listed_ids(client, owner, project_id, q="nowhere") == set()


async def test_list_search_treats_like_wildcards_literally(client, owner, project_id):
    literal = await create_sensor(client, owner, project_id, name="load 50%_max")
    await create_sensor(client, owner, project_id, name="load 50xymax")
    await create_sensor(client, owner, project_id, name="load 5")

    assert await listed_ids(client, owner, project_id, q="50%_") == {literal["id"]}
    assert await listed_ids(client, owner, project_id, q="%") == {literal["id"]}
    assert await listed_ids(client, owner, project_id, q="_") == {literal["id"]}


async def test_list_filters_combine(client, owner, project_id, pgsql, clock):
    wanted = await create_sensor(client, owner, project_id, name="wing root", type="strain")
    await create_sensor(client, owner, project_id, name="wing tip", type="strain")
    await create_sensor(client, owner, project_id, name="wing flap", type="angle")
    set_heartbeat(pgsql, wanted["id"], clock.now)

    found = await listed_ids(client, owner, project_id, q="wing", type="strain", status="online")

    assert found == {wanted["id"]}


NAMES = ["delta", "alpha", "charlie", "alpha", "bravo", "alpha", "echo"]


def expected_order(sensors: list[dict[str, Any]], sort: str) -> list[str]:
    column = sort.lstrip("-")

    def key(sensor: dict[str, Any]) -> tuple:
        value = sensor[column]
        return (
            datetime.fromisoformat(value) if column == "created_at" else value,
            uuid.UUID(sensor["id"]),
        )

    ordered = sorted(sensors, key=key, reverse=sort.startswith("-"))
    return [sensor["id"] for sensor in ordered]


@pytest.fixture
async def many_sensors(client, owner, project_id, pgsql, auth_stub) -> list[dict[str, Any]]:
    """Seven sensors of the project, some with equal names and three created at one instant,
    and a sensor of another project with one of those names."""
    created = [await create_sensor(client, owner, project_id, name=name) for name in NAMES]
    instant = datetime.fromisoformat(created[3]["created_at"])
    for sensor in created[1:4]:
        set_created_at(pgsql, sensor["id"], instant)
    other = uuid.uuid4()
    await create_sensor(client, auth_stub.member(other, "owner"), other, name="alpha")
    page = await list_sensors(client, owner, project_id, limit=500)
    assert len(page["items"]) == len(NAMES)
    return page["items"]


@pytest.mark.parametrize("sort", ["created_at", "-created_at", "name", "-name"])
async def test_list_sorts_with_id_breaking_ties(client, owner, project_id, many_sensors, sort):
    page = await list_sensors(client, owner, project_id, sort=sort)

    assert [item["id"] for item in page["items"]] == expected_order(many_sensors, sort)


async def test_list_sorts_newest_first_by_default(client, owner, project_id, many_sensors):
    page = await list_sensors(client, owner, project_id)

    assert [item["id"] for item in page["items"]] == expected_order(many_sensors, "-created_at")


@pytest.mark.parametrize("limit", [1, 2, 3, 6, 7])
@pytest.mark.parametrize("sort", ["created_at", "-created_at", "name", "-name"])
async def test_list_pages_cover_every_sensor_once(
    client, owner, project_id, many_sensors, sort, limit
):
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"sort": sort, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        page = await list_sensors(client, owner, project_id, **params)
        pages += 1
        assert 1 <= len(page["items"]) <= limit
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10

    assert seen == expected_order(many_sensors, sort)
    assert pages == -(-len(NAMES) // limit)


async def test_list_pages_keep_the_filter(client, owner, project_id, pgsql, clock):
    online = []
    for index in range(5):
        sensor = await create_sensor(client, owner, project_id, name=f"s{index}")
        if index % 2 == 0:
            set_heartbeat(pgsql, sensor["id"], clock.now)
            online.append(sensor["id"])

    first = await list_sensors(client, owner, project_id, status="online", sort="name", limit=2)
    second = await list_sensors(
        client,
        owner,
        project_id,
        status="online",
        sort="name",
        limit=2,
        cursor=first["next_cursor"],
    )

    assert [item["id"] for item in first["items"] + second["items"]] == online
    assert second["next_cursor"] is None


async def test_list_with_a_cursor_of_another_sort_is_refused(
    client, owner, project_id, many_sensors
):
    page = await list_sensors(client, owner, project_id, sort="name", limit=2)

    response = await client.get(
        SENSORS,
        params={"project_id": str(project_id), "sort": "-name", "cursor": page["next_cursor"]},
        headers=owner.headers,
    )

    await assert_problem(response, 400, "invalid_cursor")


@pytest.mark.parametrize("cursor", ["not-a-cursor", "eyJpZCI6IDF9"])
async def test_list_with_a_foreign_cursor_is_refused(client, owner, project_id, cursor):
    response = await client.get(
        SENSORS, params={"project_id": str(project_id), "cursor": cursor}, headers=owner.headers
    )

    await assert_problem(response, 400, "invalid_cursor")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "project_id"),
        ({"project_id": "not-a-uuid"}, "project_id"),
        ({"project_id": "{P}", "status": "asleep"}, "status.0"),
        ({"project_id": "{P}", "sort": "type"}, "sort"),
        ({"project_id": "{P}", "limit": "0"}, "limit"),
        ({"project_id": "{P}", "limit": "501"}, "limit"),
        ({"project_id": "{P}", "q": ""}, "q"),
        ({"project_id": "{P}", "type": ""}, "type.0"),
        ({"project_id": "{P}", "kind": "x"}, "kind"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_list_with_an_invalid_query_names_the_parameter(
    client, owner, project_id, params, field
):
    query = {key: value.replace("{P}", str(project_id)) for key, value in params.items()}

    response = await client.get(SENSORS, params=query, headers=owner.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem


# --- liveness ------------------------------------------------------------------------------------

AGES = [
    (None, "never_seen"),
    (-5.0, "online"),
    (0.0, "online"),
    (9.999999, "online"),
    (10.0, "online"),
    (10.000001, "delayed"),
    (30.0, "delayed"),
    (60.0, "delayed"),
    (60.000001, "offline"),
    (86400.0, "offline"),
]


async def assert_status(client, user, project_id, sensor_id: str, expected: str) -> None:
    assert (await get_sensor(client, user, sensor_id))["status"] == expected
    for status in STATUSES:
        found = sensor_id in await listed_ids(client, user, project_id, status=status)
        assert found == (status == expected), (status, expected)


@pytest.mark.parametrize(("age", "expected"), AGES, ids=[str(age) for age, _ in AGES])
async def test_status_follows_the_last_heartbeat(
    client, owner, project_id, pgsql, clock, age, expected
):
    sensor = await create_sensor(client, owner, project_id)
    heartbeat = None if age is None else clock.now - timedelta(seconds=age)
    set_heartbeat(pgsql, sensor["id"], heartbeat)

    await assert_status(client, owner, project_id, sensor["id"], expected)
    shown = await get_sensor(client, owner, sensor["id"])
    if heartbeat is None:
        assert shown["last_heartbeat"] is None
    else:
        assert datetime.fromisoformat(shown["last_heartbeat"]) == heartbeat


async def test_status_changes_as_the_clock_moves(client, owner, project_id, pgsql, clock):
    sensor = await create_sensor(client, owner, project_id)
    set_heartbeat(pgsql, sensor["id"], clock.now)
    steps = [(10, "online"), (0.000001, "delayed"), (49.999999, "delayed"), (0.000001, "offline")]

    for seconds, expected in steps:
        clock.advance(seconds)
        await assert_status(client, owner, project_id, sensor["id"], expected)


OTHER_THRESHOLDS = [
    (0.0, "online"),
    (2.5, "online"),
    (2.500001, "delayed"),
    (30.0, "delayed"),
    (30.000001, "offline"),
]


@pytest.mark.parametrize(
    ("age", "expected"), OTHER_THRESHOLDS, ids=[str(age) for age, _ in OTHER_THRESHOLDS]
)
async def test_status_uses_the_thresholds_from_settings(
    aiohttp_client, make_settings, pgsql, clock, owner, project_id, age, expected
):
    settings = make_settings("experiment", sensor_online_seconds=2.5, sensor_offline_seconds=30)
    client = await aiohttp_client(create_app(settings, clock=clock))
    sensor = await create_sensor(client, owner, project_id)
    set_heartbeat(pgsql, sensor["id"], clock.now - timedelta(seconds=age))

    await assert_status(client, owner, project_id, sensor["id"], expected)


async def test_equal_thresholds_leave_no_delayed_status(
    aiohttp_client, make_settings, pgsql, clock, owner, project_id
):
    settings = make_settings("experiment", sensor_online_seconds=5, sensor_offline_seconds=5)
    client = await aiohttp_client(create_app(settings, clock=clock))
    sensor = await create_sensor(client, owner, project_id)
    set_heartbeat(pgsql, sensor["id"], clock.now - timedelta(seconds=5))
    await assert_status(client, owner, project_id, sensor["id"], "online")

    clock.advance(0.000001)

    await assert_status(client, owner, project_id, sensor["id"], "offline")


async def test_status_filter_agrees_with_the_status_field(client, owner, project_id, pgsql, clock):
    ages = [None, 1, 10, 11, 45, 60, 61, 3600, None, 0]
    for age in ages:
        sensor = await create_sensor(client, owner, project_id)
        if age is not None:
            set_heartbeat(pgsql, sensor["id"], clock.now - timedelta(seconds=age))
    every = (await list_sensors(client, owner, project_id, limit=500))["items"]
    by_status: dict[str, set[str]] = {status: set() for status in STATUSES}
    for item in every:
        by_status[item["status"]].add(item["id"])
    assert {status: len(ids) for status, ids in by_status.items()} == {
        "online": 3,
        "delayed": 3,
        "offline": 2,
        "never_seen": 2,
    }

    for wanted in [*([s] for s in STATUSES), ["online", "offline"], ["delayed", "never_seen"]]:
        expected = set().union(*(by_status[status] for status in wanted))
        assert await listed_ids(client, owner, project_id, status=wanted) == expected
    assert await listed_ids(client, owner, project_id, status=list(STATUSES)) == {
        item["id"] for item in every
    }


# --- changes -------------------------------------------------------------------------------------


async def test_patch_changes_only_the_given_fields_and_audits_the_difference(
    client, owner, editor, project_id, pgsql
):
    sensor = await create_sensor(
        client, owner, project_id, name="Old name", description="old words"
    )
    before_row = sensor_row(pgsql, sensor["id"])

    response = await client.patch(
        sensor_url(sensor["id"]),
        json={"name": "New name", "display_unit": "K"},
        headers=editor.headers,
    )

    updated = await expect(response, 200)
    assert "token" not in updated
    assert updated["name"] == "New name"
    assert updated["display_unit"] == "K"
    assert updated["updated_at"] > sensor["updated_at"]
    untouched = {"name", "display_unit", "updated_at", "token"}
    assert {k: v for k, v in updated.items() if k not in untouched} == {
        k: v for k, v in sensor.items() if k not in untouched
    }
    row = sensor_row(pgsql, sensor["id"])
    assert (row["name"], row["display_unit"]) == ("New name", "K")
    for column in ("type", "input_unit", "description", "project_id", "created_by", "created_at"):
        assert row[column] == before_row[column]
    assert await get_sensor(client, editor, sensor["id"]) == updated
    entry = audit_rows(pgsql, sensor["id"])[-1]
    assert entry["action"] == "sensor.updated"
    assert entry["actor_id"] == str(editor.id)
    assert entry["actor_role"] == "editor"
    assert entry["project_id"] == str(project_id)
    assert entry["before"] == {"name": "Old name", "display_unit": "degC"}
    assert entry["after"] == {"name": "New name", "display_unit": "K"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"name": ""}, "name"),
        ({"type": "t" * 101}, "type"),
        ({"input_unit": ""}, "input_unit"),
        ({"description": "d" * 10001}, "description"),
        ({"colour": "red"}, "colour"),
        ({"project_id": "00000000-0000-0000-0000-000000000001"}, "project_id"),
        ({"status": "online"}, "status"),
        ({"last_heartbeat": "2030-01-01T00:00:00Z"}, "last_heartbeat"),
        ({"token_preview": "…abcd"}, "token_preview"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_patch_with_an_invalid_field_names_it_and_changes_nothing(
    client, editor, project_id, pgsql, body, field
):
    sensor = await create_sensor(client, editor, project_id)
    before = sensor_state(pgsql, sensor["id"])

    response = await client.patch(sensor_url(sensor["id"]), json=body, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == [field], problem
    assert sensor_state(pgsql, sensor["id"]) == before


@pytest.mark.parametrize(
    "body", [{}, {"name": None}, {"description": None}, {"type": None, "name": "ok"}]
)
async def test_patch_with_nothing_or_a_null_is_refused(client, editor, project_id, pgsql, body):
    sensor = await create_sensor(client, editor, project_id)
    before = sensor_state(pgsql, sensor["id"])

    response = await client.patch(sensor_url(sensor["id"]), json=body, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    messages = " ".join(error["message"] for error in problem["errors"])
    for name, value in body.items():
        if value is None:
            assert f"{name} cannot be null" in messages
    assert sensor_state(pgsql, sensor["id"]) == before


# --- deletion ------------------------------------------------------------------------------------


@pytest.fixture
async def experiment(client, owner, project_id):
    return await create_experiment(client, owner, project_id)


async def test_delete_removes_the_sensor_and_everything_hanging_on_it(
    client, owner, project_id, auth_stub, pgsql, experiment
):
    sensor = await create_sensor(client, owner, project_id, conversion_profile=LINEAR)
    await expect(
        await client.post(
            sensor_url(sensor["id"]) + "/rotate-token",
            json={"grace_seconds": 600},
            headers=owner.headers,
        ),
        200,
    )
    other = uuid.uuid4()
    auth_stub.grant(owner, other, "owner")
    await add_project(client, owner, sensor["id"], other)
    run = await create_run_in_status(client, owner, experiment["id"], "running")
    await bind(client, owner, run["id"], sensor["id"])
    state = sensor_state(pgsql, sensor["id"])
    assert (len(state["tokens"]), len(state["projects"]), len(state["profiles"])) == (2, 2, 1)
    assert len(state["bindings"]) == 1

    response = await client.delete(sensor_url(sensor["id"]), headers=owner.headers)

    await expect(response, 204)
    await assert_problem(
        await client.get(sensor_url(sensor["id"]), headers=owner.headers), 404, "sensor_not_found"
    )
    after = sensor_state(pgsql, sensor["id"])
    assert (after["sensor"], after["tokens"], after["projects"]) == (None, [], [])
    assert (after["profiles"], after["bindings"]) == ([], [])
    assert count(pgsql, "runs", "id = %s", (run["id"],)) == 1
    assert await listed_ids(client, owner, project_id) == set()
    entry = audit_rows(pgsql, sensor["id"])[-1]
    assert entry["action"] == "sensor.deleted"
    assert entry["actor_role"] == "owner"
    assert entry["before"]["id"] == sensor["id"]
    assert entry["before"]["project_ids"] == [str(project_id), str(other)]
    assert entry["after"] is None
    assert "token" not in entry["before"]
    assert sensor["token"][-12:] not in str(entry)


async def test_delete_twice_is_not_found_the_second_time(client, owner, project_id, pgsql):
    sensor = await create_sensor(client, owner, project_id)
    await expect(await client.delete(sensor_url(sensor["id"]), headers=owner.headers), 204)

    response = await client.delete(sensor_url(sensor["id"]), headers=owner.headers)

    await assert_problem(response, 404, "sensor_not_found")
    assert [row["action"] for row in audit_rows(pgsql, sensor["id"])] == [
        "sensor.created",
        "sensor.deleted",
    ]


async def test_delete_while_a_bound_run_captures_conflicts_until_the_capture_stops(
    client, owner, project_id, pgsql, experiment
):
    sensor = await create_sensor(client, owner, project_id)
    run = await create_run_in_status(client, owner, experiment["id"], "running")
    await bind(client, owner, run["id"], sensor["id"])
    session = await start_capture(client, owner, run["id"])
    before = sensor_state(pgsql, sensor["id"])

    response = await client.delete(sensor_url(sensor["id"]), headers=owner.headers)

    await assert_problem(response, 409, "sensor_in_active_capture")
    assert sensor_state(pgsql, sensor["id"]) == before

    await stop_capture(client, owner, run["id"], session["id"])
    await expect(await client.delete(sensor_url(sensor["id"]), headers=owner.headers), 204)
    assert sensor_row(pgsql, sensor["id"]) is None
    assert count(pgsql, "run_sensors", "run_id = %s", (run["id"],)) == 0


async def test_delete_while_a_run_of_a_shared_project_captures_conflicts(
    client, owner, project_id, auth_stub, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    other = uuid.uuid4()
    other_owner = auth_stub.member(other, "owner")
    auth_stub.grant(owner, other, "editor")
    await add_project(client, owner, sensor["id"], other)
    other_experiment = await create_experiment(client, other_owner, other)
    run = await create_run_in_status(client, other_owner, other_experiment["id"], "running")
    await bind(client, other_owner, run["id"], sensor["id"])
    await start_capture(client, other_owner, run["id"])

    response = await client.delete(sensor_url(sensor["id"]), headers=owner.headers)

    await assert_problem(response, 409, "sensor_in_active_capture")
    assert sensor_row(pgsql, sensor["id"]) is not None


async def test_delete_with_a_capture_running_in_an_unbound_run_succeeds(
    client, owner, project_id, pgsql, experiment
):
    sensor = await create_sensor(client, owner, project_id)
    bound_run = await create_run_in_status(client, owner, experiment["id"], "running")
    busy_run = await create_run_in_status(client, owner, experiment["id"], "running")
    await bind(client, owner, bound_run["id"], sensor["id"])
    await start_capture(client, owner, busy_run["id"])

    await expect(await client.delete(sensor_url(sensor["id"]), headers=owner.headers), 204)

    assert sensor_row(pgsql, sensor["id"]) is None


# --- projects ------------------------------------------------------------------------------------


async def test_add_project_shares_the_sensor_and_audits_it(
    client, owner, project_id, auth_stub, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    other = uuid.uuid4()
    auth_stub.grant(owner, other, "editor")

    response = await client.post(
        sensor_url(sensor["id"]) + "/projects",
        json={"project_id": str(other)},
        headers=owner.headers,
    )

    link = await expect(response, 201)
    assert response.headers["Location"] == sensor_url(sensor["id"]) + "/projects"
    assert {key: link[key] for key in ("sensor_id", "project_id", "home", "added_by")} == {
        "sensor_id": sensor["id"],
        "project_id": str(other),
        "home": False,
        "added_by": str(owner.id),
    }
    assert project_rows(pgsql, sensor["id"]) == [
        (str(project_id), str(owner.id)),
        (str(other), str(owner.id)),
    ]
    listing = await expect(
        await client.get(sensor_url(sensor["id"]) + "/projects", headers=owner.headers), 200
    )
    assert listing["next_cursor"] is None
    assert [(item["project_id"], item["home"]) for item in listing["items"]] == [
        (str(project_id), True),
        (str(other), False),
    ]
    assert listing["items"][1] == link
    shown = await get_sensor(client, owner, sensor["id"])
    assert shown["project_id"] == str(project_id)
    assert shown["project_ids"] == [str(project_id), str(other)]
    entry = audit_rows(pgsql, sensor["id"])[-1]
    assert entry["action"] == "sensor.project_added"
    assert entry["project_id"] == str(project_id)
    assert entry["actor_id"] == str(owner.id)
    assert entry["actor_role"] == "owner"
    assert entry["after"] == {"project_id": str(other)}


async def test_members_of_an_added_project_see_the_sensor_but_cannot_manage_it(
    client, owner, project_id, auth_stub, pgsql
):
    sensor = await create_sensor(client, owner, project_id, conversion_profile=LINEAR)
    other = uuid.uuid4()
    auth_stub.grant(owner, other, "owner")
    await add_project(client, owner, sensor["id"], other)
    viewer = auth_stub.member(other, "viewer")
    url = sensor_url(sensor["id"])

    assert await get_sensor(client, viewer, sensor["id"]) == await get_sensor(
        client, owner, sensor["id"]
    )
    assert sensor["id"] in await listed_ids(client, viewer, other)
    await expect(await client.get(url + "/projects", headers=viewer.headers), 200)
    await expect(await client.get(url + "/conversion-profiles", headers=viewer.headers), 200)
    await assert_problem(
        await client.get(SENSORS, params={"project_id": str(project_id)}, headers=viewer.headers),
        404,
        "not_found",
    )

    before = sensor_state(pgsql, sensor["id"])
    for managing in [
        client.patch(url, json={"name": "mine"}, headers=viewer.headers),
        client.delete(url, headers=viewer.headers),
        client.post(url + "/rotate-token", json={}, headers=viewer.headers),
        client.post(url + "/revoke-token", headers=viewer.headers),
        client.post(
            url + "/conversion-profiles", json={**LINEAR, "version": "v2"}, headers=viewer.headers
        ),
    ]:
        await assert_problem(await managing, 403, "forbidden")
    assert sensor_state(pgsql, sensor["id"]) == before


async def test_add_project_where_the_caller_has_no_role_is_not_found(
    client, owner, project_id, pgsql
):
    sensor = await create_sensor(client, owner, project_id)

    response = await client.post(
        sensor_url(sensor["id"]) + "/projects",
        json={"project_id": str(uuid.uuid4())},
        headers=owner.headers,
    )

    await assert_problem(response, 404, "not_found")
    assert project_rows(pgsql, sensor["id"]) == [(str(project_id), str(owner.id))]


async def test_add_project_where_the_caller_only_views_is_forbidden(
    client, owner, project_id, auth_stub, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    other = uuid.uuid4()
    auth_stub.grant(owner, other, "viewer")

    response = await client.post(
        sensor_url(sensor["id"]) + "/projects",
        json={"project_id": str(other)},
        headers=owner.headers,
    )

    await assert_problem(response, 403, "forbidden")
    assert len(project_rows(pgsql, sensor["id"])) == 1


async def test_add_project_twice_conflicts(client, owner, project_id, auth_stub, pgsql):
    sensor = await create_sensor(client, owner, project_id)
    other = uuid.uuid4()
    auth_stub.grant(owner, other, "editor")
    await add_project(client, owner, sensor["id"], other)
    audited = audit_count(pgsql)

    response = await client.post(
        sensor_url(sensor["id"]) + "/projects",
        json={"project_id": str(other)},
        headers=owner.headers,
    )

    await assert_problem(response, 409, "sensor_already_in_project")
    assert len(project_rows(pgsql, sensor["id"])) == 2
    assert audit_count(pgsql) == audited


async def test_add_the_home_project_conflicts(client, owner, project_id, pgsql):
    sensor = await create_sensor(client, owner, project_id)

    response = await client.post(
        sensor_url(sensor["id"]) + "/projects",
        json={"project_id": str(project_id)},
        headers=owner.headers,
    )

    await assert_problem(response, 409, "sensor_already_in_project")
    assert project_rows(pgsql, sensor["id"]) == [(str(project_id), str(owner.id))]


async def test_a_sensor_belongs_to_at_most_100_projects(
    client, owner, project_id, auth_stub, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    with pgsql["experiment"].cursor() as cursor:
        for _ in range(98):
            cursor.execute(
                "INSERT INTO sensor_projects (sensor_id, project_id, added_by) VALUES (%s, %s, %s)",
                (sensor["id"], str(uuid.uuid4()), str(owner.id)),
            )
    hundredth, extra = uuid.uuid4(), uuid.uuid4()
    auth_stub.grant(owner, hundredth, "editor")
    auth_stub.grant(owner, extra, "editor")

    await add_project(client, owner, sensor["id"], hundredth)
    response = await client.post(
        sensor_url(sensor["id"]) + "/projects",
        json={"project_id": str(extra)},
        headers=owner.headers,
    )

    await assert_problem(response, 409, "sensor_project_limit")
    assert len(project_rows(pgsql, sensor["id"])) == 100
    assert str(extra) not in {project for project, _ in project_rows(pgsql, sensor["id"])}


@pytest.fixture
async def shared(client, owner, project_id, auth_stub):
    """A sensor of the project shared with another project, whose owner is `other_owner`."""
    other = uuid.uuid4()
    auth_stub.grant(owner, other, "editor")
    sensor = await create_sensor(client, owner, project_id)
    await add_project(client, owner, sensor["id"], other)
    return {"sensor": sensor, "other": other, "other_owner": auth_stub.member(other, "owner")}


async def test_remove_project_unshares_the_sensor_and_audits_it(
    client, owner, project_id, auth_stub, pgsql, shared
):
    sensor, other = shared["sensor"], shared["other"]
    viewer = auth_stub.member(other, "viewer")
    assert sensor["id"] in await listed_ids(client, viewer, other)

    response = await client.delete(
        sensor_url(sensor["id"]) + f"/projects/{other}", headers=owner.headers
    )

    await expect(response, 204)
    assert project_rows(pgsql, sensor["id"]) == [(str(project_id), str(owner.id))]
    assert (await get_sensor(client, owner, sensor["id"]))["project_ids"] == [str(project_id)]
    await assert_problem(
        await client.get(sensor_url(sensor["id"]), headers=viewer.headers), 404, "sensor_not_found"
    )
    assert await listed_ids(client, viewer, other) == set()
    entry = audit_rows(pgsql, sensor["id"])[-1]
    assert entry["action"] == "sensor.project_removed"
    assert entry["project_id"] == str(project_id)
    assert entry["actor_id"] == str(owner.id)
    assert entry["actor_role"] == "owner"
    assert entry["after"] == {"project_id": str(other)}


async def test_owner_of_the_shared_project_may_remove_it(client, project_id, pgsql, shared):
    sensor, other, other_owner = shared["sensor"], shared["other"], shared["other_owner"]

    response = await client.delete(
        sensor_url(sensor["id"]) + f"/projects/{other}", headers=other_owner.headers
    )

    await expect(response, 204)
    assert [project for project, _ in project_rows(pgsql, sensor["id"])] == [str(project_id)]
    entry = audit_rows(pgsql, sensor["id"])[-1]
    assert (entry["action"], entry["actor_id"]) == ("sensor.project_removed", str(other_owner.id))
    await assert_problem(
        await client.get(sensor_url(sensor["id"]), headers=other_owner.headers),
        404,
        "sensor_not_found",
    )


async def test_remove_the_home_project_conflicts(client, owner, project_id, pgsql, shared):
    sensor = shared["sensor"]
    before = sensor_state(pgsql, sensor["id"])

    response = await client.delete(
        sensor_url(sensor["id"]) + f"/projects/{project_id}", headers=owner.headers
    )

    await assert_problem(response, 409, "home_project_not_removable")
    assert sensor_state(pgsql, sensor["id"]) == before


async def test_owner_of_a_shared_project_cannot_remove_the_home_project(
    client, project_id, pgsql, shared
):
    sensor = shared["sensor"]
    before = sensor_state(pgsql, sensor["id"])

    response = await client.delete(
        sensor_url(sensor["id"]) + f"/projects/{project_id}",
        headers=shared["other_owner"].headers,
    )

    await assert_problem(response, 409, "home_project_not_removable")
    assert sensor_state(pgsql, sensor["id"]) == before


async def test_remove_a_project_the_sensor_is_not_in_is_not_found(
    client, owner, project_id, pgsql, shared
):
    sensor = shared["sensor"]
    before = sensor_state(pgsql, sensor["id"])

    response = await client.delete(
        sensor_url(sensor["id"]) + f"/projects/{uuid.uuid4()}", headers=owner.headers
    )

    await assert_problem(response, 404, "sensor_project_not_found")
    assert sensor_state(pgsql, sensor["id"]) == before


@pytest.mark.parametrize(
    ("home_role", "other_role"),
    [("editor", None), ("viewer", None), (None, "editor"), (None, "viewer"), ("editor", "editor")],
)
async def test_remove_project_without_an_owner_role_in_either_is_forbidden(
    client, project_id, auth_stub, pgsql, shared, home_role, other_role
):
    sensor, other = shared["sensor"], shared["other"]
    user = auth_stub.user()
    auth_stub.grant(user, project_id, home_role)
    auth_stub.grant(user, other, other_role)
    before = sensor_state(pgsql, sensor["id"])

    response = await client.delete(
        sensor_url(sensor["id"]) + f"/projects/{other}", headers=user.headers
    )

    await assert_problem(response, 403, "forbidden")
    assert sensor_state(pgsql, sensor["id"]) == before


async def test_owner_of_one_shared_project_cannot_remove_another(
    client, owner, project_id, auth_stub, pgsql, shared
):
    sensor = shared["sensor"]
    third = uuid.uuid4()
    auth_stub.grant(owner, third, "editor")
    await add_project(client, owner, sensor["id"], third)
    before = sensor_state(pgsql, sensor["id"])

    response = await client.delete(
        sensor_url(sensor["id"]) + f"/projects/{third}", headers=shared["other_owner"].headers
    )

    await assert_problem(response, 403, "forbidden")
    assert sensor_state(pgsql, sensor["id"]) == before


async def test_remove_project_while_bound_to_its_runs_conflicts_until_unbound(
    client, owner, project_id, pgsql, shared
):
    sensor, other, other_owner = shared["sensor"], shared["other"], shared["other_owner"]
    other_experiment = await create_experiment(client, other_owner, other)
    run = await create_run_in_status(client, other_owner, other_experiment["id"], "running")
    await bind(client, other_owner, run["id"], sensor["id"])
    before = sensor_state(pgsql, sensor["id"])
    url = sensor_url(sensor["id"]) + f"/projects/{other}"

    for user in (owner, other_owner):
        response = await client.delete(url, headers=user.headers)
        await assert_problem(response, 409, "sensor_bound_in_project")
    assert sensor_state(pgsql, sensor["id"]) == before

    await expect(
        await client.delete(
            f"/api/v1/runs/{run['id']}/sensors/{sensor['id']}", headers=other_owner.headers
        ),
        204,
    )
    await expect(await client.delete(url, headers=owner.headers), 204)
    assert [project for project, _ in project_rows(pgsql, sensor["id"])] == [str(project_id)]


async def test_binding_in_the_home_project_does_not_block_removing_another(
    client, owner, project_id, pgsql, shared, experiment
):
    sensor, other = shared["sensor"], shared["other"]
    run = await create_run_in_status(client, owner, experiment["id"], "running")
    await bind(client, owner, run["id"], sensor["id"])

    response = await client.delete(
        sensor_url(sensor["id"]) + f"/projects/{other}", headers=owner.headers
    )

    await expect(response, 204)
    assert [project for project, _ in project_rows(pgsql, sensor["id"])] == [str(project_id)]
    assert len(sensor_state(pgsql, sensor["id"])["bindings"]) == 1


# --- who may do what -----------------------------------------------------------------------------


@dataclass
class World:
    """A sensor of `home` (made by its owner, with an active profile) shared with `shared`;
    `target` is a project it is not in yet."""

    home: uuid.UUID
    shared: uuid.UUID
    target: uuid.UUID
    sensor: dict[str, Any]


@pytest.fixture
async def world(client, owner, project_id, auth_stub) -> World:
    shared_project, target = uuid.uuid4(), uuid.uuid4()
    auth_stub.grant(owner, shared_project, "editor")
    sensor = await create_sensor(client, owner, project_id, conversion_profile=LINEAR)
    await add_project(client, owner, sensor["id"], shared_project)
    return World(home=project_id, shared=shared_project, target=target, sensor=sensor)


def route_request(route: str, world: World, *, list_project: Any = None) -> tuple:
    """(method, path, json body, query) of one sensor route against the world's sensor."""
    url = sensor_url(world.sensor["id"])
    profile = f"{url}/conversion-profiles/{world.sensor['active_profile_id']}"
    return {
        "create": ("POST", SENSORS, sensor_body(world.home), None),
        "list": ("GET", SENSORS, None, {"project_id": str(list_project or world.home)}),
        "get": ("GET", url, None, None),
        "patch": ("PATCH", url, {"description": "changed"}, None),
        "delete": ("DELETE", url, None, None),
        "rotate": ("POST", url + "/rotate-token", {"grace_seconds": 60}, None),
        "revoke": ("POST", url + "/revoke-token", None, None),
        "list_projects": ("GET", url + "/projects", None, None),
        "ingest_errors": ("GET", url + "/ingest-errors", None, None),
        "add_project": ("POST", url + "/projects", {"project_id": str(world.target)}, None),
        "remove_project": ("DELETE", f"{url}/projects/{world.shared}", None, None),
        "list_profiles": ("GET", url + "/conversion-profiles", None, None),
        "get_profile": ("GET", profile, None, None),
        "create_profile": (
            "POST",
            url + "/conversion-profiles",
            {**LINEAR, "version": "v2"},
            None,
        ),
        "schedule_profile": (
            "POST",
            profile + "/schedule",
            {"valid_from": "2099-01-01T00:00:00Z"},
            None,
        ),
        "publish_profile": ("POST", profile + "/publish", None, None),
        "deprecate_profile": ("POST", profile + "/deprecate", None, None),
    }[route]


# route -> (minimum role in the home project, status on success, what the success changes)
HOME_ROUTES = {
    "create": ("editor", 201, "sensor_count"),
    "list": ("viewer", 200, None),
    "get": ("viewer", 200, None),
    "patch": ("editor", 200, "sensor"),
    "delete": ("owner", 204, "sensor"),
    "rotate": ("owner", 200, "tokens"),
    "revoke": ("owner", 200, "tokens"),
    "list_projects": ("viewer", 200, None),
    "ingest_errors": ("viewer", 200, None),
    "add_project": ("owner", 201, "projects"),
    "remove_project": ("owner", 204, "projects"),
    "list_profiles": ("viewer", 200, None),
    "get_profile": ("viewer", 200, None),
    "create_profile": ("editor", 201, "profiles"),
}
RANK = {"viewer": 0, "editor": 1, "owner": 2}
SENSOR_ROUTES = [route for route in HOME_ROUTES if route not in ("create", "list")] + [
    "schedule_profile",
    "publish_profile",
    "deprecate_profile",
]


async def call(client, route: str, world: World, headers: dict[str, str], **kwargs: Any):
    method, path, body, params = route_request(route, world, **kwargs)
    return await client.request(method, path, json=body, params=params, headers=headers)


async def check_outcome(response, pgsql, world: World, before: dict, success: int, effect):
    assert response.status == success, await response.text()
    after = sensor_state(pgsql, world.sensor["id"])
    if effect is None:
        assert after == before
        if response.status == 200 and response.method == "GET":
            assert '"token"' not in await response.text()
        return
    assert after[effect] != before[effect]
    assert after["audit_count"] == before["audit_count"] + 1


@pytest.mark.parametrize("route", list(HOME_ROUTES))
@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
async def test_sensor_route_by_home_role_answers_per_rbac(
    client, auth_stub, pgsql, world, role, route
):
    user = auth_stub.member(world.home, role)
    auth_stub.grant(user, world.target, "editor")
    before = sensor_state(pgsql, world.sensor["id"])

    response = await call(client, route, world, user.headers)

    minimum, success, effect = HOME_ROUTES[route]
    if RANK[role] < RANK[minimum]:
        await assert_problem(response, 403, "forbidden")
        assert sensor_state(pgsql, world.sensor["id"]) == before
    else:
        await check_outcome(response, pgsql, world, before, success, effect)


# route -> status for a member of the shared project only, by role there
SHARED_ROUTES = {
    "list": {"viewer": 200, "editor": 200, "owner": 200},
    "get": {"viewer": 200, "editor": 200, "owner": 200},
    "list_projects": {"viewer": 200, "editor": 200, "owner": 200},
    "ingest_errors": {"viewer": 200, "editor": 200, "owner": 200},
    "list_profiles": {"viewer": 200, "editor": 200, "owner": 200},
    "get_profile": {"viewer": 200, "editor": 200, "owner": 200},
    "patch": {"viewer": 403, "editor": 403, "owner": 403},
    "delete": {"viewer": 403, "editor": 403, "owner": 403},
    "rotate": {"viewer": 403, "editor": 403, "owner": 403},
    "revoke": {"viewer": 403, "editor": 403, "owner": 403},
    "add_project": {"viewer": 403, "editor": 403, "owner": 403},
    "create_profile": {"viewer": 403, "editor": 403, "owner": 403},
    "publish_profile": {"viewer": 403, "editor": 403, "owner": 403},
    "deprecate_profile": {"viewer": 403, "editor": 403, "owner": 403},
    "remove_project": {"viewer": 403, "editor": 403, "owner": 204},
}


@pytest.mark.parametrize("route", list(SHARED_ROUTES))
@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
async def test_sensor_route_by_role_in_a_shared_project_only_answers_per_rbac(
    client, auth_stub, pgsql, world, role, route
):
    user = auth_stub.member(world.shared, role)
    auth_stub.grant(user, world.target, "owner")
    before = sensor_state(pgsql, world.sensor["id"])

    response = await call(client, route, world, user.headers, list_project=world.shared)

    expected = SHARED_ROUTES[route][role]
    if expected == 403:
        await assert_problem(response, 403, "forbidden")
        assert sensor_state(pgsql, world.sensor["id"]) == before
    else:
        effect = "projects" if route == "remove_project" else None
        await check_outcome(response, pgsql, world, before, expected, effect)
    if route == "list":
        assert world.sensor["id"] in {item["id"] for item in (await response.json())["items"]}


@pytest.mark.parametrize("route", SENSOR_ROUTES)
async def test_sensor_route_for_a_user_of_another_project_is_not_found(
    client, auth_stub, pgsql, world, route
):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    auth_stub.grant(stranger, world.target, "owner")
    before = sensor_state(pgsql, world.sensor["id"])

    response = await call(client, route, world, stranger.headers)

    problem = await assert_problem(response, 404, "sensor_not_found")
    assert world.sensor["name"] not in str(problem)
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", ["create", "list"])
async def test_project_route_for_a_user_of_another_project_is_not_found(
    client, auth_stub, pgsql, world, route
):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    before = sensor_state(pgsql, world.sensor["id"])

    response = await call(client, route, world, stranger.headers)

    await assert_problem(response, 404, "not_found")
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", SENSOR_ROUTES)
async def test_sensor_route_for_an_unknown_sensor_is_not_found(client, owner, world, route):
    unknown = World(
        home=world.home,
        shared=world.shared,
        target=world.target,
        sensor={**world.sensor, "id": str(uuid.uuid4())},
    )

    response = await call(client, route, unknown, owner.headers)

    await assert_problem(response, 404, "sensor_not_found")


# --- bad requests --------------------------------------------------------------------------------

WRITING_ROUTES = ["create", "patch", "rotate", "revoke", "add_project"]
WRONG_TYPES = {
    "create": ({"name": 5}, "name"),
    "patch": ({"name": ["a"]}, "name"),
    "rotate": ({"grace_seconds": "soon"}, "grace_seconds"),
    "add_project": ({"project_id": 5}, "project_id"),
}


def with_body(route: str, world: World, body: dict[str, Any]) -> dict[str, Any]:
    """The route's valid body with `body` laid over it."""
    _, _, valid, _ = route_request(route, world)
    return {**(valid or {}), **body}


@pytest.mark.parametrize("route", WRITING_ROUTES)
async def test_writing_route_with_malformed_json_is_a_bad_request(
    client, owner, auth_stub, pgsql, world, route
):
    auth_stub.grant(owner, world.target, "editor")
    method, path, _, _ = route_request(route, world)
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method,
        path,
        data=b'{"name": "half',
        headers={**owner.headers, "Content-Type": "application/json"},
    )

    await assert_problem(response, 400, "malformed_json")
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", WRITING_ROUTES)
async def test_writing_route_with_another_media_type_is_refused(
    client, owner, auth_stub, pgsql, world, route
):
    method, path, _, _ = route_request(route, world)
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method, path, data=b"name=x", headers={**owner.headers, "Content-Type": "text/plain"}
    )

    await assert_problem(response, 415, "unsupported_media_type")
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", list(WRONG_TYPES))
async def test_writing_route_with_a_wrong_type_names_the_field(
    client, owner, auth_stub, pgsql, world, route
):
    auth_stub.grant(owner, world.target, "editor")
    method, path, _, _ = route_request(route, world)
    body, field = WRONG_TYPES[route]
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method, path, json=with_body(route, world, body), headers=owner.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == [field], problem
    assert all(error["in"] == "body" for error in problem["errors"])
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", WRITING_ROUTES)
async def test_writing_route_with_an_unknown_field_names_it(
    client, owner, auth_stub, pgsql, world, route
):
    auth_stub.grant(owner, world.target, "editor")
    method, path, _, _ = route_request(route, world)
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method, path, json=with_body(route, world, {"colour": "red"}), headers=owner.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["colour"], problem
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", WRITING_ROUTES)
async def test_writing_route_with_a_non_object_body_is_refused(client, owner, pgsql, world, route):
    method, path, _, _ = route_request(route, world)
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method, path, json=["not", "an", "object"], headers=owner.headers
    )

    await assert_problem(response, 422, "validation_failed")
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize("route", WRITING_ROUTES)
async def test_writing_route_with_a_body_over_the_limit_is_too_large(
    client, owner, auth_stub, pgsql, world, route
):
    auth_stub.grant(owner, world.target, "editor")
    method, path, _, _ = route_request(route, world)
    limit = client.app[SETTINGS].max_body_bytes
    body = b'{"description": "' + b"d" * limit + b'"}'
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(
        method, path, data=body, headers={**owner.headers, "Content-Type": "application/json"}
    )

    await assert_problem(response, 413, "payload_too_large")
    assert sensor_state(pgsql, world.sensor["id"]) == before


def bearer_headers(kind: str, user, key: SigningKey) -> dict[str, str]:
    if kind == "missing":
        return {}
    if kind == "not_bearer":
        return {"Authorization": f"Basic {user.token}"}
    if kind == "forged":
        forger = SigningKey.generate(kid=key.kid)
        return {"Authorization": f"Bearer {forger.mint(str(user.id))}"}
    assert kind == "expired"
    return {"Authorization": f"Bearer {key.mint(str(user.id), ttl=-100)}"}


@pytest.mark.parametrize("kind", ["missing", "not_bearer", "forged", "expired"])
@pytest.mark.parametrize("route", ["create", "list", *SENSOR_ROUTES])
async def test_sensor_route_without_a_valid_bearer_is_unauthorized(
    client, owner, auth_signing_key, pgsql, world, route, kind
):
    before = sensor_state(pgsql, world.sensor["id"])

    response = await call(client, route, world, bearer_headers(kind, owner, auth_signing_key))

    problem = await assert_problem(response, 401, "unauthorized")
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert world.sensor["name"] not in str(problem)
    assert sensor_state(pgsql, world.sensor["id"]) == before


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate-token"),
        ("POST", "/revoke-token"),
        ("GET", "/projects"),
        ("GET", "/ingest-errors"),
        ("POST", "/projects"),
        ("DELETE", "/projects/{project}"),
        ("GET", "/conversion-profiles"),
        ("POST", "/conversion-profiles"),
    ],
)
@pytest.mark.parametrize("bad", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
async def test_sensor_route_with_a_bad_uuid_in_the_path_is_not_found(
    client, owner, pgsql, world, method, suffix, bad
):
    path = f"{SENSORS}/{bad}{suffix}".replace("{project}", str(world.shared))
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.request(method, path, json={"name": "x"}, headers=owner.headers)

    await assert_problem(response, 404, "not_found")
    assert sensor_state(pgsql, world.sensor["id"]) == before


async def test_remove_project_with_a_bad_project_uuid_is_not_found(client, owner, pgsql, world):
    before = sensor_state(pgsql, world.sensor["id"])

    response = await client.delete(
        sensor_url(world.sensor["id"]) + "/projects/not-a-uuid", headers=owner.headers
    )

    await assert_problem(response, 404, "not_found")
    assert sensor_state(pgsql, world.sensor["id"]) == before


async def test_list_projects_with_an_unknown_parameter_names_it(client, owner, world):
    response = await client.get(
        sensor_url(world.sensor["id"]) + "/projects", params={"limit": "1"}, headers=owner.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["limit"]


# --- races ---------------------------------------------------------------------------------------


@pytest.fixture
async def row_lock(pgsql, make_settings, client):
    """`async with row_lock(sensor_id) as waiting:` holds the sensor's row lock on a connection
    of its own; requests sent inside wait for it, `await waiting(n)` returns once n of them do,
    and leaving the block lets them go."""
    conn = await asyncpg.connect(make_settings("experiment").database_url.get_secret_value())
    pool = client.app[DATABASE].pool

    async def waiting(count: int) -> None:
        # Synchronisation with the database, not a wait for time to pass.
        for _ in range(1000):
            found = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if found >= count:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"only {found} of {count} requests came to wait for the lock")

    @contextlib.asynccontextmanager
    async def hold(sensor_id: str):
        # Connected beforehand, so that no request waits for a new connection instead.
        held = [await pool.acquire() for _ in range(6)]
        for pooled in held:
            await pool.release(pooled)
        async with conn.transaction():
            await conn.execute(
                "SELECT 1 FROM sensors WHERE id = $1 FOR UPDATE", uuid.UUID(sensor_id)
            )
            yield waiting

    yield hold
    await conn.close()


# sensor_access reads the sensor's projects in the statement that waits for the row lock; in
# READ COMMITTED that statement's snapshot predates the commit of the transaction it waited for,
# so the projects it returns miss what that transaction changed.


async def test_concurrent_adds_never_pass_the_project_limit(
    client, owner, project_id, auth_stub, pgsql, row_lock
):
    sensor = await create_sensor(client, owner, project_id)
    with pgsql["experiment"].cursor() as cursor:
        for _ in range(98):
            cursor.execute(
                "INSERT INTO sensor_projects (sensor_id, project_id, added_by) VALUES (%s, %s, %s)",
                (sensor["id"], str(uuid.uuid4()), str(owner.id)),
            )
    targets = [uuid.uuid4() for _ in range(4)]
    for target in targets:
        auth_stub.grant(owner, target, "editor")
    url = sensor_url(sensor["id"]) + "/projects"

    async with row_lock(sensor["id"]) as waiting:
        sent = [
            asyncio.ensure_future(
                client.post(url, json={"project_id": str(target)}, headers=owner.headers)
            )
            for target in targets
        ]
        await waiting(len(sent))
    responses = await asyncio.gather(*sent)

    statuses = sorted(response.status for response in responses)
    assert len(project_rows(pgsql, sensor["id"])) == 100
    assert statuses == [201, 409, 409, 409]


async def test_sequential_adds_stop_at_the_project_limit(
    client, owner, project_id, auth_stub, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    with pgsql["experiment"].cursor() as cursor:
        for _ in range(98):
            cursor.execute(
                "INSERT INTO sensor_projects (sensor_id, project_id, added_by) VALUES (%s, %s, %s)",
                (sensor["id"], str(uuid.uuid4()), str(owner.id)),
            )
    targets = [uuid.uuid4() for _ in range(3)]
    statuses = []
    for target in targets:
        auth_stub.grant(owner, target, "editor")
        response = await client.post(
            sensor_url(sensor["id"]) + "/projects",
            json={"project_id": str(target)},
            headers=owner.headers,
        )
        statuses.append(response.status)

    assert statuses == [201, 409, 409]
    assert len(project_rows(pgsql, sensor["id"])) == 100


async def test_concurrent_removals_of_one_project_remove_it_once(
    client, owner, project_id, pgsql, shared, row_lock
):
    sensor, other = shared["sensor"], shared["other"]
    url = sensor_url(sensor["id"]) + f"/projects/{other}"

    async with row_lock(sensor["id"]) as waiting:
        sent = [asyncio.ensure_future(client.delete(url, headers=owner.headers)) for _ in range(3)]
        await waiting(len(sent))
    responses = await asyncio.gather(*sent)

    assert [project for project, _ in project_rows(pgsql, sensor["id"])] == [str(project_id)]
    removals = [
        row for row in audit_rows(pgsql, sensor["id"]) if row["action"] == "sensor.project_removed"
    ]
    assert len(removals) == 1
    assert sorted(response.status for response in responses) == [204, 404, 404]


async def test_concurrent_rotations_wait_for_the_row_lock_and_keep_one_current_token(
    client, owner, project_id, pgsql, row_lock
):
    sensor = await create_sensor(client, owner, project_id)
    url = sensor_url(sensor["id"]) + "/rotate-token"

    async with row_lock(sensor["id"]) as waiting:
        sent = [
            asyncio.ensure_future(
                client.post(url, json={"grace_seconds": 60}, headers=owner.headers)
            )
            for _ in range(3)
        ]
        await waiting(len(sent))
    responses = await asyncio.gather(*sent)

    tokens = [(await expect(response, 200))["token"] for response in responses]
    state = sensor_state(pgsql, sensor["id"])
    assert len(state["tokens"]) == 4
    assert [expires_at for _, expires_at in state["tokens"]].count(None) == 1
    assert len(set(tokens)) == 3
