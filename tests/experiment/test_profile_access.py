"""Conversion profiles: who may read and write them, and their audit rows."""

import uuid

import pytest

from tests.experiment.factories import audit_count, audit_rows, expect, share_sensor
from tests.experiment.profile_kit import (
    HOUR,
    act,
    action_request,
    create_profile,
    create_sensor,
    profile_rows,
    profile_url,
    profiles_url,
)
from tests.problems import assert_problem


@pytest.fixture
async def sensor(client, editor, project_id):
    return await create_sensor(client, editor, project_id)


# --- who may do what ------------------------------------------------------------------------

WRITES = ("create", "schedule", "publish", "deprecate")
READS = ("list", "get")


async def profile_route(client, user, sensor_id, route, targets, clock):
    if route == "list":
        return await client.get(profiles_url(sensor_id), headers=user.headers)
    if route == "get":
        return await client.get(profile_url(sensor_id, targets["draft"]), headers=user.headers)
    if route == "create":
        return await client.post(
            profiles_url(sensor_id),
            json={"version": "by-route", "kind": "linear", "payload": {"a": 1}},
            headers=user.headers,
        )
    target = targets["active"] if route == "deprecate" else targets["draft"]
    return await action_request(client, user, sensor_id, target, route, clock.now + HOUR)


@pytest.fixture
async def targets(client, editor, sensor, clock):
    draft = await create_profile(client, editor, sensor["id"])
    active = await create_profile(client, editor, sensor["id"])
    await act(client, editor, sensor["id"], active["id"], "publish")
    clock.advance(1)
    return {"draft": draft["id"], "active": active["id"]}


@pytest.mark.parametrize("route", READS + WRITES)
@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
async def test_profile_route_as_home_member(
    client, auth_stub, project_id, sensor, targets, pgsql, clock, role, route
):
    user = auth_stub.member(project_id, role)
    before = profile_rows(pgsql, sensor["id"])
    audited = audit_count(pgsql)

    response = await profile_route(client, user, sensor["id"], route, targets, clock)

    if route in READS or role != "viewer":
        assert response.status == (201 if route == "create" else 200), await response.text()
        if route in WRITES:
            assert audit_count(pgsql) == audited + 1
            assert profile_rows(pgsql, sensor["id"]) != before
        return
    await assert_problem(response, 403, "forbidden")
    assert profile_rows(pgsql, sensor["id"]) == before
    assert audit_count(pgsql) == audited


@pytest.mark.parametrize("route", READS + WRITES)
@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
async def test_profile_route_as_member_of_a_shared_project(
    client, auth_stub, owner, project_id, sensor, targets, pgsql, clock, role, route
):
    shared = await share_sensor(client, auth_stub, owner, sensor)
    user = auth_stub.member(shared, role)
    before = profile_rows(pgsql, sensor["id"])
    audited = audit_count(pgsql)

    response = await profile_route(client, user, sensor["id"], route, targets, clock)

    if route in READS:
        body = await expect(response, 200)
        if route == "list":
            assert {p["id"] for p in body["items"]} == set(targets.values())
        return
    # Only the home project manages the sensor's profiles.
    await assert_problem(response, 403, "forbidden")
    assert profile_rows(pgsql, sensor["id"]) == before
    assert audit_count(pgsql) == audited


@pytest.mark.parametrize("route", READS + WRITES)
async def test_profile_route_as_stranger_hides_the_sensor(
    client, auth_stub, sensor, targets, pgsql, clock, route
):
    user = auth_stub.member(uuid.uuid4(), "owner")
    before = profile_rows(pgsql, sensor["id"])

    response = await profile_route(client, user, sensor["id"], route, targets, clock)

    problem = await assert_problem(response, 404, "sensor_not_found")
    assert targets["draft"] not in str(problem)
    assert profile_rows(pgsql, sensor["id"]) == before


async def test_profile_routes_without_token_are_unauthorized(client, sensor, targets):
    response = await client.get(profiles_url(sensor["id"]))
    await assert_problem(response, 401, "unauthorized")
    response = await client.post(profile_url(sensor["id"], targets["draft"]) + "/publish")
    await assert_problem(response, 401, "unauthorized")


# --- audit ----------------------------------------------------------------------------------


async def test_every_profile_change_is_audited_under_the_sensor(
    client, auth_stub, project_id, sensor, pgsql, clock
):
    owner = auth_stub.member(project_id, "owner")
    editor = auth_stub.member(project_id, "editor")
    sid = sensor["id"]
    profile = await create_profile(client, editor, sid, kind="linear", payload={"a": 3})
    scheduled = await act(
        client, owner, sid, profile["id"], "schedule", valid_from=clock.now + HOUR
    )
    clock.advance(10)
    published = await act(client, editor, sid, profile["id"], "publish")
    clock.advance(10)
    deprecated = await act(client, editor, sid, profile["id"], "deprecate")

    rows = audit_rows(pgsql, profile["id"])

    assert [row["action"] for row in rows] == [
        "conversion_profile.created",
        "conversion_profile.scheduled",
        "conversion_profile.activated",
        "conversion_profile.deprecated",
    ]
    for row in rows:
        assert row["entity_type"] == "conversion_profile"
        assert str(row["parent_id"]) == sid
        assert str(row["project_id"]) == str(project_id)
        assert row["request_id"]
    assert [(str(r["actor_id"]), r["actor_role"]) for r in rows] == [
        (str(editor.id), "editor"),
        (str(owner.id), "owner"),
        (str(editor.id), "editor"),
        (str(editor.id), "editor"),
    ]
    created, on_schedule, on_publish, on_deprecate = rows
    assert created["before"] is None
    assert created["after"]["payload"] == {"a": 3.0, "b": 0.0}
    assert created["after"]["status"] == "draft"
    assert on_schedule["before"]["status"] == "draft"
    assert on_schedule["after"]["status"] == "scheduled"
    assert on_schedule["after"]["valid_from"] == scheduled["valid_from"]
    assert on_publish["before"]["valid_from"] == scheduled["valid_from"]
    assert on_publish["after"]["valid_from"] == published["valid_from"]
    assert on_publish["after"]["status"] == "active"
    assert on_deprecate["after"]["status"] == "deprecated"
    assert on_deprecate["after"]["deprecated_at"] == deprecated["deprecated_at"]
    # The audit API finds them by entity type.
    response = await client.get(
        "/api/v1/audit",
        params={"project_id": str(project_id), "entity_type": "conversion_profile"},
        headers=owner.headers,
    )
    items = (await expect(response, 200))["items"]
    assert {item["action"] for item in items} == {row["action"] for row in rows}
    assert {item["parent_id"] for item in items} == {sid}


async def test_refused_changes_write_no_audit_rows(client, editor, viewer, sensor, pgsql, clock):
    profile = await create_profile(client, editor, sensor["id"])
    audited = audit_count(pgsql)

    for response in [
        await action_request(client, editor, sensor["id"], profile["id"], "deprecate"),
        await action_request(client, viewer, sensor["id"], profile["id"], "publish"),
        await action_request(client, editor, sensor["id"], profile["id"], "schedule", clock.now),
    ]:
        assert response.status in (403, 409, 422), await response.text()

    assert audit_count(pgsql) == audited
