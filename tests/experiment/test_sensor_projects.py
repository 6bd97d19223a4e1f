"""Sensors: the projects a sensor is shared with, adding and removing them, also when requests
race."""

import asyncio
import contextlib
import uuid

import asyncpg
import pytest

from backend_common.keys import DATABASE
from tests.experiment.factories import (
    audit_count,
    audit_rows,
    create_experiment,
    create_run_in_status,
    expect,
)
from tests.experiment.sensor_kit import (
    LINEAR,
    SENSORS,
    add_project,
    bind,
    create_sensor,
    get_sensor,
    listed_ids,
    project_rows,
    sensor_state,
    sensor_url,
)
from tests.plugins.waiting import eventually
from tests.problems import assert_problem

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
        async def arrived() -> bool:
            found = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return found >= count

        await eventually(
            arrived, within=5.0, interval=0.005, what=f"{count} requests to wait for the lock"
        )

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
