"""Sensors: creation (also idempotent), changes and deletion."""

import asyncio
import uuid
from datetime import datetime

import pytest

from tests.experiment.factories import (
    audit_count,
    audit_rows,
    create_experiment,
    create_run_in_status,
    expect,
    start_capture,
)
from tests.experiment.sensor_kit import (
    LINEAR,
    SENSORS,
    add_project,
    bind,
    count,
    create_sensor,
    get_sensor,
    listed_ids,
    project_rows,
    sensor_body,
    sensor_row,
    sensor_state,
    sensor_url,
    stop_capture,
    without_token,
)
from tests.problems import assert_problem

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
