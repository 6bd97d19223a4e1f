"""Sensors bound to a run: archived runs, who may do what, the audit rows, and bad input."""

import uuid

import pytest

from tests.experiment.factories import (
    audit_count,
    audit_rows,
    create_run_in_status,
    expect,
    set_run_status,
)
from tests.experiment.run_sensor_kit import (
    actions_of,
    bind,
    bind_request,
    binding_rows,
    run_sensor_url,
    run_sensors_url,
)
from tests.experiment.sensor_kit import create_sensor
from tests.plugins.roles import role_matrix
from tests.problems import assert_problem


@pytest.fixture
async def sensor(client, editor, project_id):
    return await create_sensor(client, editor, project_id)


# --- archived runs and roles ----------------------------------------------------------------


async def test_archived_run_refuses_bind_and_unbind(client, owner, experiment, project_id, pgsql):
    bound_sensor = await create_sensor(client, owner, project_id)
    free_sensor = await create_sensor(client, owner, project_id)
    run = await create_run_in_status(client, owner, experiment["id"], "succeeded")
    bound = await bind(client, owner, run["id"], bound_sensor["id"])
    await set_run_status(client, owner, run["id"], "archived")
    audited = audit_count(pgsql)

    response = await bind_request(client, owner, run["id"], free_sensor["id"])
    await assert_problem(response, 409, "run_archived")
    response = await client.delete(
        run_sensor_url(run["id"], bound_sensor["id"]), headers=owner.headers
    )
    await assert_problem(response, 409, "run_archived")

    assert [row[1] for row in binding_rows(pgsql)] == [bound_sensor["id"]]
    assert audit_count(pgsql) == audited
    # Its bindings can still be read.
    listed = await expect(await client.get(run_sensors_url(run["id"]), headers=owner.headers), 200)
    assert [item["sensor"]["id"] for item in listed["items"]] == [bound_sensor["id"]]
    assert listed["items"][0]["bound_at"] == bound["bound_at"]


# route -> answer per role: a status for success, (status, code) for a problem.
FORBIDDEN = (403, "forbidden")
NO_RUN = (404, "run_not_found")
RUN_SENSOR_MATRIX = {
    "list": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_RUN},
    "get": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_RUN},
    "bind": {"owner": 201, "editor": 201, "viewer": FORBIDDEN, "stranger": NO_RUN},
    "unbind": {"owner": 204, "editor": 204, "viewer": FORBIDDEN, "stranger": NO_RUN},
}


@role_matrix(RUN_SENSOR_MATRIX)
async def test_run_sensor_route_by_role(
    client, auth_stub, caller_as, owner, project_id, run, pgsql, route, role, expected
):
    bound = await create_sensor(client, owner, project_id)
    free = await create_sensor(client, owner, project_id)
    await bind(client, owner, run["id"], bound["id"])
    user = caller_as(role, project_id)
    # An owner elsewhere too: for a stranger the run's project is not theirs, so neither the run.
    auth_stub.grant(user, uuid.uuid4(), "owner")
    before = binding_rows(pgsql)
    audited = audit_count(pgsql)

    response = await {
        "list": lambda: client.get(run_sensors_url(run["id"]), headers=user.headers),
        "get": lambda: client.get(run_sensor_url(run["id"], bound["id"]), headers=user.headers),
        "bind": lambda: bind_request(client, user, run["id"], free["id"]),
        "unbind": lambda: client.delete(
            run_sensor_url(run["id"], bound["id"]), headers=user.headers
        ),
    }[route]()

    if isinstance(expected, tuple):
        await assert_problem(response, *expected)
    else:
        await expect(response, expected)
        if route == "bind":
            assert len(binding_rows(pgsql)) == 2
            assert audit_count(pgsql) == audited + 1
        elif route == "unbind":
            assert binding_rows(pgsql) == []
            assert audit_count(pgsql) == audited + 1
        return
    assert binding_rows(pgsql) == before
    assert audit_count(pgsql) == audited


async def test_run_sensor_routes_without_token_are_unauthorized(client, run, sensor):
    response = await client.get(run_sensors_url(run["id"]))
    await assert_problem(response, 401, "unauthorized")
    response = await client.post(run_sensors_url(run["id"]), json={"sensor_id": sensor["id"]})
    await assert_problem(response, 401, "unauthorized")


# --- audit ----------------------------------------------------------------------------------


async def test_bind_and_unbind_are_audited_on_the_run(
    client, editor, project_id, run, sensor, pgsql
):
    await bind(client, editor, run["id"], sensor["id"])
    await expect(
        await client.delete(run_sensor_url(run["id"], sensor["id"]), headers=editor.headers), 204
    )

    rows = [row for row in audit_rows(pgsql, run["id"]) if row["action"].startswith("run.sensor")]

    assert [row["action"] for row in rows] == ["run.sensor_bound", "run.sensor_unbound"]
    for row in rows:
        assert row["entity_type"] == "run"
        assert str(row["project_id"]) == str(project_id)
        assert str(row["actor_id"]) == str(editor.id)
        assert row["actor_role"] == "editor"
        assert row["request_id"]
    bound_row, unbound_row = rows
    assert (bound_row["before"], bound_row["after"]) == (None, {"sensor_id": sensor["id"]})
    assert (unbound_row["before"], unbound_row["after"]) == ({"sensor_id": sensor["id"]}, None)
    # Nothing about the binding is written under the sensor itself, and no token anywhere.
    assert actions_of(pgsql, sensor["id"]) == ["sensor.created"]
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_log WHERE before::text || after::text ~ 'etps_'")
        assert cursor.fetchone()[0] == 0


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "sensor_id"),
        ({"sensor_id": None}, "sensor_id"),
        ({"sensor_id": 123}, "sensor_id"),
        ({"sensor_id": "abc"}, "sensor_id"),
        ({"sensor_id": ["00000000-0000-0000-0000-000000000000"]}, "sensor_id"),
        ({"sensor_id": {"id": 1}}, "sensor_id"),
        ({"sensor_id": "SENSOR", "run_id": "x"}, "run_id"),
        ({"sensor_id": "SENSOR", "project_id": "SENSOR"}, "project_id"),
    ],
)
async def test_bind_with_invalid_body_names_the_field(
    client, editor, run, sensor, pgsql, body, field
):
    body = {k: sensor["id"] if v == "SENSOR" else v for k, v in body.items()}

    response = await client.post(run_sensors_url(run["id"]), json=body, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem
    assert binding_rows(pgsql) == []


@pytest.mark.parametrize(
    "raw", ['{"sensor_id": ', "sensor_id=1", '{"sensor_id": "a",}', "", "[1, 2"]
)
async def test_bind_with_malformed_json_is_rejected(client, editor, run, pgsql, raw):
    response = await client.post(
        run_sensors_url(run["id"]),
        data=raw,
        headers={**editor.headers, "Content-Type": "application/json"},
    )
    await assert_problem(response, 400, "malformed_json")
    assert binding_rows(pgsql) == []


async def test_bind_with_a_json_array_or_another_media_type_is_rejected(
    client, editor, run, sensor, pgsql
):
    response = await client.post(
        run_sensors_url(run["id"]), json=[{"sensor_id": sensor["id"]}], headers=editor.headers
    )
    await assert_problem(response, 422, "validation_failed")
    response = await client.post(
        run_sensors_url(run["id"]),
        data=f"sensor_id={sensor['id']}",
        headers={**editor.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    await assert_problem(response, 415, "unsupported_media_type")
    assert binding_rows(pgsql) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/runs/not-a-uuid/sensors"),
        ("POST", "/api/v1/runs/not-a-uuid/sensors"),
        ("GET", "/api/v1/runs/12345/sensors/{sensor}"),
        ("DELETE", "/api/v1/runs/{run}/sensors/not-a-uuid"),
        ("GET", "/api/v1/runs/{run}/sensors/not-a-uuid"),
    ],
)
async def test_run_sensor_route_with_invalid_uuid_is_not_found(
    client, editor, run, sensor, pgsql, method, path
):
    await bind(client, editor, run["id"], sensor["id"])
    url = path.format(run=run["id"], sensor=sensor["id"])
    body = {"sensor_id": sensor["id"]} if method == "POST" else None

    response = await client.request(method, url, json=body, headers=editor.headers)

    await assert_problem(response, 404, "not_found")
    assert len(binding_rows(pgsql)) == 1
