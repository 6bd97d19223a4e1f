"""Sensors bound to a run: binding, reading and unbinding, the projects of run and sensor, and
what deleting a sensor or a run does to its bindings."""

import asyncio
import uuid
from datetime import timedelta

import pytest

from tests.experiment.factories import (
    audit_count,
    create_run,
    create_run_in_status,
    expect,
    start_capture,
)
from tests.experiment.run_sensor_kit import (
    actions_of,
    all_pages,
    bind,
    bind_request,
    binding_rows,
    run_sensor_url,
    run_sensors_url,
    sensor_exists,
    sensor_project_ids,
)
from tests.experiment.sensor_kit import add_project as share_sensor
from tests.experiment.sensor_kit import create_sensor, get_sensor
from tests.problems import assert_problem


@pytest.fixture
async def sensor(client, editor, project_id):
    return await create_sensor(client, editor, project_id)


# --- bind, read, unbind ---------------------------------------------------------------------


async def test_bind_sensor_stores_the_binding_in_the_runs_project(
    client, editor, run, sensor, pgsql
):
    response = await bind_request(client, editor, run["id"], sensor["id"])
    bound = await expect(response, 201)

    assert response.headers["Location"] == run_sensor_url(run["id"], sensor["id"])
    assert bound["run_id"] == run["id"]
    assert bound["bound_by"] == str(editor.id)
    assert bound["bound_at"]
    assert bound["sensor"] == await get_sensor(client, editor, sensor["id"])
    assert "token" not in bound["sensor"]
    assert binding_rows(pgsql) == [(run["id"], sensor["id"], run["project_id"], str(editor.id))]
    fetched = await client.get(run_sensor_url(run["id"], sensor["id"]), headers=editor.headers)
    assert await expect(fetched, 200) == bound


async def test_bound_sensor_shows_its_liveness_and_active_profile(
    client, editor, project_id, run, pgsql, clock
):
    sensor = await create_sensor(
        client,
        editor,
        project_id,
        conversion_profile={"version": "v1", "kind": "linear", "payload": {"a": 1.5}},
    )
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "UPDATE sensors SET last_heartbeat = %s WHERE id = %s",
            (clock.now - timedelta(seconds=5), sensor["id"]),
        )

    bound = await bind(client, editor, run["id"], sensor["id"])

    assert bound["sensor"]["status"] == "online"
    assert bound["sensor"]["active_profile_id"] == sensor["active_profile_id"] is not None
    assert bound["sensor"]["token_preview"] == sensor["token_preview"]
    clock.advance(120)
    fetched = await expect(
        await client.get(run_sensor_url(run["id"], sensor["id"]), headers=editor.headers), 200
    )
    assert fetched["sensor"]["status"] == "offline"


async def test_bind_sensor_to_finished_run_is_allowed(client, editor, experiment, sensor, pgsql):
    run = await create_run_in_status(client, editor, experiment["id"], "succeeded")

    await bind(client, editor, run["id"], sensor["id"])

    assert [row[1] for row in binding_rows(pgsql, run["id"])] == [sensor["id"]]


async def test_list_bound_sensors_pages_by_sensor_id(
    client, editor, viewer, project_id, experiment, run, pgsql
):
    sensors = [await create_sensor(client, editor, project_id) for _ in range(5)]
    bound = {s["id"]: await bind(client, editor, run["id"], s["id"]) for s in sensors}
    # A binding to another run stays out of this run's list.
    other_run = await create_run(client, editor, experiment["id"])
    await bind(client, editor, other_run["id"], sensors[0]["id"])

    items, pages = await all_pages(client, viewer, run["id"], limit=2)

    assert pages == 3
    ids = [item["sensor"]["id"] for item in items]
    assert ids == sorted(bound, key=uuid.UUID)
    assert items == [bound[sensor_id] for sensor_id in ids]
    other_items, _ = await all_pages(client, viewer, other_run["id"], limit=50)
    assert [item["sensor"]["id"] for item in other_items] == [sensors[0]["id"]]
    assert len(binding_rows(pgsql)) == 6


async def test_list_without_bindings_is_empty(client, viewer, run):
    response = await client.get(run_sensors_url(run["id"]), headers=viewer.headers)
    assert await expect(response, 200) == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        ({"cursor": "eyJzZW5zb3JfaWQiOiAxfQ"}, 400, "invalid_cursor"),  # {"sensor_id": 1}
        ({"limit": "0"}, 422, "validation_failed"),
        ({"limit": "501"}, 422, "validation_failed"),
        ({"status": "online"}, 422, "validation_failed"),
    ],
)
async def test_list_with_bad_query_is_rejected(client, editor, run, sensor, params, status, code):
    await bind(client, editor, run["id"], sensor["id"])
    response = await client.get(run_sensors_url(run["id"]), params=params, headers=editor.headers)
    await assert_problem(response, status, code)


async def test_unbind_removes_only_that_binding(client, editor, project_id, run, sensor, pgsql):
    other = await create_sensor(client, editor, project_id)
    await bind(client, editor, run["id"], sensor["id"])
    await bind(client, editor, run["id"], other["id"])

    response = await client.delete(run_sensor_url(run["id"], sensor["id"]), headers=editor.headers)

    await expect(response, 204)
    assert [row[1] for row in binding_rows(pgsql, run["id"])] == [other["id"]]
    assert sensor_exists(pgsql, sensor["id"])
    response = await client.get(run_sensor_url(run["id"], sensor["id"]), headers=editor.headers)
    await assert_problem(response, 404, "sensor_not_bound")
    response = await client.delete(run_sensor_url(run["id"], sensor["id"]), headers=editor.headers)
    await assert_problem(response, 404, "sensor_not_bound")
    # Unbound, it can be bound again.
    await bind(client, editor, run["id"], sensor["id"])
    assert len(binding_rows(pgsql, run["id"])) == 2


@pytest.mark.parametrize("which", ["not bound", "unknown"])
async def test_get_or_unbind_of_a_sensor_not_bound_is_not_found(
    client, editor, run, sensor, pgsql, which
):
    sensor_id = sensor["id"] if which == "not bound" else str(uuid.uuid4())
    audited = audit_count(pgsql)

    for response in [
        await client.get(run_sensor_url(run["id"], sensor_id), headers=editor.headers),
        await client.delete(run_sensor_url(run["id"], sensor_id), headers=editor.headers),
    ]:
        await assert_problem(response, 404, "sensor_not_bound")
    assert audit_count(pgsql) == audited


async def test_bind_twice_conflicts(client, editor, run, sensor, pgsql):
    await bind(client, editor, run["id"], sensor["id"])

    response = await bind_request(client, editor, run["id"], sensor["id"])

    await assert_problem(response, 409, "sensor_already_bound")
    assert len(binding_rows(pgsql)) == 1
    assert actions_of(pgsql, run["id"]).count("run.sensor_bound") == 1


async def test_racing_binds_of_one_sensor_bind_it_once(client, editor, run, sensor, pgsql):
    responses = await asyncio.gather(
        *(bind_request(client, editor, run["id"], sensor["id"]) for _ in range(5))
    )

    assert sorted(r.status for r in responses) == [201, 409, 409, 409, 409]
    for response in responses:
        if response.status == 409:
            await assert_problem(response, 409, "sensor_already_bound")
    assert len(binding_rows(pgsql)) == 1
    assert actions_of(pgsql, run["id"]).count("run.sensor_bound") == 1


async def test_bind_with_idempotency_key_replays_the_first_answer(
    client, editor, run, sensor, pgsql
):
    first = await bind_request(client, editor, run["id"], sensor["id"], **{"Idempotency-Key": "b1"})
    again = await bind_request(client, editor, run["id"], sensor["id"], **{"Idempotency-Key": "b1"})

    assert await expect(again, 201) == await expect(first, 201)
    assert len(binding_rows(pgsql)) == 1
    assert actions_of(pgsql, run["id"]).count("run.sensor_bound") == 1


# --- projects -------------------------------------------------------------------------------


@pytest.fixture
async def two_projects(client, auth_stub, project_id):
    """A sensor homed in another project; a user who is editor in the run's and viewer there."""
    other_project = uuid.uuid4()
    other_owner = auth_stub.member(other_project, "owner")
    sensor = await create_sensor(client, other_owner, other_project)
    user = auth_stub.member(project_id, "editor")
    auth_stub.grant(user, other_project, "viewer")
    return other_project, other_owner, sensor, user


async def test_bind_sensor_of_another_project_conflicts_until_shared(
    client, auth_stub, project_id, run, two_projects, pgsql
):
    other_project, other_owner, sensor, user = two_projects
    audited = audit_count(pgsql)

    response = await bind_request(client, user, run["id"], sensor["id"])

    await assert_problem(response, 409, "sensor_not_in_project")
    assert binding_rows(pgsql) == []
    assert audit_count(pgsql) == audited
    # Shared into the run's project, it binds there.
    auth_stub.grant(other_owner, project_id, "editor")
    await share_sensor(client, other_owner, sensor["id"], project_id)
    bound = await bind(client, user, run["id"], sensor["id"])
    assert sorted(bound["sensor"]["project_ids"]) == sorted([str(other_project), str(project_id)])
    assert binding_rows(pgsql) == [(run["id"], sensor["id"], str(project_id), str(user.id))]


async def test_bind_sensor_shared_into_the_runs_project_needs_no_role_in_its_home(
    client, auth_stub, project_id, run, pgsql
):
    home = uuid.uuid4()
    home_owner = auth_stub.member(home, "owner")
    auth_stub.grant(home_owner, project_id, "editor")
    sensor = await create_sensor(client, home_owner, home)
    await share_sensor(client, home_owner, sensor["id"], project_id)
    user = auth_stub.member(project_id, "editor")

    bound = await bind(client, user, run["id"], sensor["id"])

    assert bound["sensor"]["project_id"] == str(home)
    assert binding_rows(pgsql) == [(run["id"], sensor["id"], str(project_id), str(user.id))]


async def test_bind_sensor_the_caller_cannot_see_is_not_found(
    client, auth_stub, editor, run, pgsql
):
    hidden_project = uuid.uuid4()
    hidden = await create_sensor(client, auth_stub.member(hidden_project, "owner"), hidden_project)

    for sensor_id in (hidden["id"], str(uuid.uuid4())):
        response = await bind_request(client, editor, run["id"], sensor_id)
        problem = await assert_problem(response, 404, "sensor_not_found")
        assert hidden["name"] not in str(problem)
    assert binding_rows(pgsql) == []


@pytest.mark.parametrize("route", ["list", "get", "bind", "unbind"])
async def test_routes_of_a_run_of_another_project_are_not_found(
    client, auth_stub, editor, run, sensor, pgsql, route
):
    await bind(client, editor, run["id"], sensor["id"])
    # The outsider owns another project, with a sensor of their own.
    own_project = uuid.uuid4()
    outsider = auth_stub.member(own_project, "owner")
    own_sensor = await create_sensor(client, outsider, own_project)
    target = sensor["id"] if route in ("get", "unbind") else own_sensor["id"]

    for run_id in (run["id"], str(uuid.uuid4())):
        response = await {
            "list": lambda rid=run_id: client.get(run_sensors_url(rid), headers=outsider.headers),
            "get": lambda rid=run_id: client.get(
                run_sensor_url(rid, target), headers=outsider.headers
            ),
            "bind": lambda rid=run_id: bind_request(client, outsider, rid, target),
            "unbind": lambda rid=run_id: client.delete(
                run_sensor_url(rid, target), headers=outsider.headers
            ),
        }[route]()
        await assert_problem(response, 404, "run_not_found")
    assert binding_rows(pgsql) == [(run["id"], sensor["id"], run["project_id"], str(editor.id))]


async def test_removing_the_runs_project_from_a_bound_sensor_conflicts(
    client, auth_stub, project_id, owner, run, pgsql
):
    home = uuid.uuid4()
    home_owner = auth_stub.member(home, "owner")
    auth_stub.grant(home_owner, project_id, "editor")
    sensor = await create_sensor(client, home_owner, home)
    await share_sensor(client, home_owner, sensor["id"], project_id)
    await bind(client, owner, run["id"], sensor["id"])
    url = f"/api/v1/sensors/{sensor['id']}/projects/{project_id}"

    # Neither the sensor's home owner nor the run project's owner may pull it out from under it.
    for user in (home_owner, owner):
        response = await client.delete(url, headers=user.headers)
        await assert_problem(response, 409, "sensor_bound_in_project")
    assert sensor_project_ids(pgsql, sensor["id"]) == {str(home), str(project_id)}
    assert len(binding_rows(pgsql)) == 1

    await expect(
        await client.delete(run_sensor_url(run["id"], sensor["id"]), headers=owner.headers), 204
    )
    await expect(await client.delete(url, headers=home_owner.headers), 204)
    assert sensor_project_ids(pgsql, sensor["id"]) == {str(home)}


async def test_binding_in_one_project_does_not_hold_back_removing_another(
    client, auth_stub, project_id, owner, run, pgsql
):
    elsewhere = uuid.uuid4()
    auth_stub.grant(owner, elsewhere, "editor")
    sensor = await create_sensor(client, owner, project_id)
    await share_sensor(client, owner, sensor["id"], elsewhere)
    await bind(client, owner, run["id"], sensor["id"])

    response = await client.delete(
        f"/api/v1/sensors/{sensor['id']}/projects/{elsewhere}", headers=owner.headers
    )

    await expect(response, 204)
    assert sensor_project_ids(pgsql, sensor["id"]) == {str(project_id)}
    assert len(binding_rows(pgsql)) == 1


async def test_racing_bind_and_project_removal_never_strand_a_binding(
    client, auth_stub, project_id, run, pgsql
):
    home = uuid.uuid4()
    home_owner = auth_stub.member(home, "owner")
    auth_stub.grant(home_owner, project_id, "editor")
    user = auth_stub.member(project_id, "editor")
    auth_stub.grant(user, home, "viewer")
    for _ in range(6):
        sensor = await create_sensor(client, home_owner, home)
        await share_sensor(client, home_owner, sensor["id"], project_id)

        bound, removed = await asyncio.gather(
            bind_request(client, user, run["id"], sensor["id"]),
            client.delete(
                f"/api/v1/sensors/{sensor['id']}/projects/{project_id}",
                headers=home_owner.headers,
            ),
        )

        rows = [row for row in binding_rows(pgsql) if row[1] == sensor["id"]]
        if bound.status == 201:
            await assert_problem(removed, 409, "sensor_bound_in_project")
            assert len(rows) == 1
            assert sensor_project_ids(pgsql, sensor["id"]) == {str(home), str(project_id)}
        else:
            await assert_problem(bound, 409, "sensor_not_in_project")
            assert removed.status == 204, await removed.text()
            assert rows == []
            assert sensor_project_ids(pgsql, sensor["id"]) == {str(home)}


# --- deleting sensors and runs --------------------------------------------------------------


async def test_delete_sensor_in_a_running_capture_conflicts_until_stopped(
    client, owner, experiment, project_id, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    run = await create_run_in_status(client, owner, experiment["id"], "running")
    await bind(client, owner, run["id"], sensor["id"])
    session = await start_capture(client, owner, run["id"])

    response = await client.delete(f"/api/v1/sensors/{sensor['id']}", headers=owner.headers)

    await assert_problem(response, 409, "sensor_in_active_capture")
    assert sensor_exists(pgsql, sensor["id"])
    assert len(binding_rows(pgsql)) == 1
    assert "sensor.deleted" not in actions_of(pgsql, sensor["id"])

    stop_url = f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}/stop"
    await expect(await client.post(stop_url, json={}, headers=owner.headers), 200)
    response = await client.delete(f"/api/v1/sensors/{sensor['id']}", headers=owner.headers)
    await expect(response, 204)
    assert not sensor_exists(pgsql, sensor["id"])
    assert binding_rows(pgsql) == []
    assert actions_of(pgsql, sensor["id"])[-1] == "sensor.deleted"


async def test_running_capture_of_another_run_does_not_hold_back_deletion(
    client, owner, experiment, project_id, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    bound_run = await create_run(client, owner, experiment["id"])
    busy_run = await create_run_in_status(client, owner, experiment["id"], "running")
    await bind(client, owner, bound_run["id"], sensor["id"])
    await start_capture(client, owner, busy_run["id"])

    response = await client.delete(f"/api/v1/sensors/{sensor['id']}", headers=owner.headers)

    await expect(response, 204)
    assert not sensor_exists(pgsql, sensor["id"])


async def test_delete_bound_sensor_without_capture_removes_its_bindings(
    client, owner, experiment, project_id, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    kept = await create_sensor(client, owner, project_id)
    runs = [await create_run(client, owner, experiment["id"]) for _ in range(2)]
    for run in runs:
        await bind(client, owner, run["id"], sensor["id"])
    await bind(client, owner, runs[0]["id"], kept["id"])

    response = await client.delete(f"/api/v1/sensors/{sensor['id']}", headers=owner.headers)

    await expect(response, 204)
    assert [row[1] for row in binding_rows(pgsql)] == [kept["id"]]
    for run in runs:
        listed = await expect(
            await client.get(run_sensors_url(run["id"]), headers=owner.headers), 200
        )
        assert [item["sensor"]["id"] for item in listed["items"]] == (
            [kept["id"]] if run is runs[0] else []
        )
        response = await client.get(run_sensor_url(run["id"], sensor["id"]), headers=owner.headers)
        await assert_problem(response, 404, "sensor_not_bound")


async def test_racing_bind_and_sensor_deletion_leave_no_binding_behind(
    client, owner, run, project_id, pgsql
):
    for _ in range(6):
        sensor = await create_sensor(client, owner, project_id)

        bound, deleted = await asyncio.gather(
            bind_request(client, owner, run["id"], sensor["id"]),
            client.delete(f"/api/v1/sensors/{sensor['id']}", headers=owner.headers),
        )

        assert deleted.status == 204, await deleted.text()
        if bound.status != 201:
            await assert_problem(bound, 404, "sensor_not_found")
        assert not sensor_exists(pgsql, sensor["id"])
        assert binding_rows(pgsql) == []


async def test_delete_run_removes_its_bindings(client, owner, experiment, project_id, pgsql):
    sensor = await create_sensor(client, owner, project_id)
    run = await create_run(client, owner, experiment["id"])
    await bind(client, owner, run["id"], sensor["id"])

    await expect(await client.delete(f"/api/v1/runs/{run['id']}", headers=owner.headers), 204)

    assert binding_rows(pgsql) == []
    assert sensor_exists(pgsql, sensor["id"])
