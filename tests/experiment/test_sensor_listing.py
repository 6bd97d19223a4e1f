"""Sensors: listing (filters, search, sorting, pages) and liveness on the service's clock."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from experiment_service.app import create_app
from tests.experiment.sensor_kit import (
    LINEAR,
    SENSORS,
    STATUSES,
    add_project,
    create_sensor,
    get_sensor,
    list_sensors,
    listed_ids,
    set_created_at,
    set_heartbeat,
)
from tests.problems import assert_problem

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
