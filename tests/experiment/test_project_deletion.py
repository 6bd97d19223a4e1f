"""A project deleted in the auth service, as the experiment and telemetry services carry it out
(docs/operations.md, "Deleting a project"): the internal route records the announcement, revokes
the project's sensors at once and keeps a sensor shared into another project working there;
the jobs then delete every row of the project, its artifacts' objects and its telemetry."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from backend_common.keys import SETTINGS
from experiment_service.app import JOB_RUNNER, create_app
from experiment_service.appkeys import ARTIFACTS
from telemetry_ingest_service.app import create_app as create_ingest_app
from telemetry_ingest_service.appkeys import JOB_RUNNER as INGEST_JOB_RUNNER
from tests.experiment.artifact_kit import LocalStorage
from tests.experiment.deletion_kit import (
    ROUTE,
    announce,
    count,
    deletion_row,
    notice,
    populate,
    rows_of,
    service_token,
)
from tests.experiment.factories import expect
from tests.plugins.waiting import eventually
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import accepted, batch, create_sensor, readings_at, send
from tests.tokens import SigningKey

# The few rows that stay, by design: the audit log keeps its retention (who deleted what).
KEPT = {"audit_log"}


@pytest.fixture
async def api(pgsql, auth_stub, aiohttp_client, make_settings, clock, mockserver_host, tmp_path):
    """The experiment service (its JWKS from the auth stub), deleting five rows per chunk."""
    settings = make_settings(
        "experiment",
        webhook_allowed_hosts=(mockserver_host,),
        artifact_dir=tmp_path / "artifacts",
        project_deletion_chunk=5,
    )
    return await aiohttp_client(create_app(settings, clock=clock))


@pytest.fixture
async def ingest(pgsql, aiohttp_client, make_settings, clock):
    """Telemetry ingest whose rollup is refreshed every 20 ms (the readings' minutes are old)."""
    settings = make_settings("telemetry_ingest", rollup_interval=0.02, rollup_grace_seconds=0)
    return await aiohttp_client(create_ingest_app(settings, clock=clock))


async def until_refused(ingest, sensor: dict[str, Any]) -> None:
    """The token is refused (ingest hears of token changes asynchronously); an empty batch,
    which a valid token gets 422 for, stores nothing meanwhile."""

    async def unauthorized() -> bool:
        return (await send(ingest, sensor["token"], batch(sensor, []))).status == 401

    await eventually(unauthorized, what="the sensor's token to be refused")


async def run_all_jobs(api, ingest) -> dict[str, Any]:
    """Both services' due jobs, on the test's clock; the experiment's results by name."""
    outcomes = {o.name: o for o in await api.app[JOB_RUNNER].run_due()}
    await ingest.app[INGEST_JOB_RUNNER].run_due()
    return outcomes


def stored_objects(api) -> dict[str, bytes]:
    return LocalStorage(api.app[SETTINGS].artifact_dir).objects()


async def test_a_deleted_project_is_revoked_at_once_and_its_rows_deleted_by_the_jobs(
    api, ingest, auth_stub, auth_signing_key, owner, project_id, receiver, clock, pgsql
):
    world = await populate(api, ingest, auth_stub, owner, project_id, receiver().url)
    await eventually(
        lambda: count(pgsql, "SELECT count(*) FROM telemetry_rollup_pending") == 0,
        what="the rollup to be refreshed",
    )
    before = rows_of(pgsql, world)
    assert set(before) >= {
        "experiments",
        "runs",
        "capture_sessions",
        "run_sensors",
        "sensors",
        "sensor_tokens",
        "conversion_profiles",
        "webhook_subscriptions",
        "webhook_events",
        "webhook_deliveries",
        "run_metrics",
        "run_metric_tiles",
        "artifacts",
        "project_settings",
        "telemetry_records",
        "telemetry_rollup",
        "ingest_errors",
    }, before
    assert set(stored_objects(api)) == set(world.artifact_ids)

    recorded = await announce(api, auth_signing_key, project_id)
    assert recorded["project_id"] == str(project_id)
    assert recorded["finished_at"] is None

    # At once: the project's own sensor is refused; the sensor it shared with another project
    # now lives there and keeps working, as does the other project's sensor it had borrowed.
    await until_refused(ingest, world.own)
    now = datetime.now(UTC)
    for sensor in (world.shared_out, world.shared_in):
        await accepted(ingest, sensor["token"], batch(sensor, readings_at(now, 7.0)))
    moved = await expect(
        await api.get(
            f"/api/v1/sensors/{world.shared_out['id']}", headers=world.other_owner.headers
        ),
        200,
    )
    assert moved["project_id"] == str(world.other_id)

    outcomes = await run_all_jobs(api, ingest)
    job = outcomes["projects.delete_data"]
    assert job.status == "succeeded", job
    assert job.result["projects"] == 1
    assert job.result["runs"] == 1
    assert job.result["sensors"] == 1
    while await api.app[ARTIFACTS].empty_trash():
        pass

    assert rows_of(pgsql, world) == {}
    assert stored_objects(api) == {}
    finished = deletion_row(pgsql, project_id)
    assert finished is not None
    assert finished["finished_at"] is not None
    assert finished["result"]["runs"] == 1
    assert (
        count(
            pgsql,
            "SELECT count(*) FROM deleted_sensors WHERE sensor_id = %s"
            " AND readings_deleted_at IS NOT NULL",
            world.own["id"],
        )
        == 1
    )

    # The other project keeps both shared sensors, their readings and its run's bindings.
    mine = {world.shared_out["id"], world.shared_in["id"]}
    assert (
        count(
            pgsql,
            "SELECT count(*) FROM sensor_projects WHERE project_id = %s",
            str(world.other_id),
        )
        == 2
    )
    assert (
        count(pgsql, "SELECT count(*) FROM run_sensors WHERE run_id = %s", world.other_run["id"])
        == 2
    )
    for sensor_id in mine:
        assert (
            count(pgsql, "SELECT count(*) FROM telemetry_records WHERE sensor_id = %s", sensor_id)
            == 4
        )
    audit = count(
        pgsql,
        "SELECT count(*) FROM audit_log WHERE project_id = %s AND action = 'project.deleted'",
        str(project_id),
    )
    assert audit == 1
    homes = count(
        pgsql,
        "SELECT count(*) FROM audit_log WHERE project_id = %s AND action = 'sensor.home_changed'"
        " AND entity_id = %s",
        str(world.other_id),
        world.shared_out["id"],
    )
    assert homes == 1


async def test_a_redelivered_announcement_changes_nothing(
    api, ingest, auth_stub, auth_signing_key, owner, project_id, clock, pgsql
):
    event_id = str(uuid.uuid4())
    first = await announce(api, auth_signing_key, project_id, event_id=event_id)
    await run_all_jobs(api, ingest)
    done = deletion_row(pgsql, project_id)
    assert done is not None
    assert done["finished_at"] is not None

    again = await announce(api, auth_signing_key, project_id, event_id=str(uuid.uuid4()))
    assert again["event_id"] == event_id
    assert again["recorded_at"] == first["recorded_at"]
    assert again["finished_at"] is not None
    assert deletion_row(pgsql, project_id) == done
    assert (
        count(
            pgsql,
            "SELECT count(*) FROM audit_log WHERE project_id = %s AND action = 'project.deleted'",
            str(project_id),
        )
        == 1
    )


async def test_a_crash_between_chunks_is_taken_up_by_the_next_run(
    api, ingest, auth_stub, auth_signing_key, owner, project_id, receiver, clock, pgsql
):
    """A run of the job cut off in the middle (here: its lease lost, a chunk's statement
    failing) leaves the deletion pending; the next run goes on from what is left."""
    world = await populate(api, ingest, auth_stub, owner, project_id, receiver().url, runs=5)
    await announce(api, auth_signing_key, project_id)
    with pgsql["experiment"].cursor() as cursor:
        # Experiments are deleted after the runs: that statement fails once (a sequence is
        # not rolled back with the failing transaction).
        cursor.execute("CREATE SEQUENCE refuse_seq")
        cursor.execute(
            "CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF nextval('refuse_seq') = 1 THEN RAISE EXCEPTION 'cut off'; END IF;"
            " RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER experiments_refuse BEFORE DELETE ON experiments"
            " FOR EACH STATEMENT EXECUTE FUNCTION refuse_once()"
        )
    try:
        outcomes = await run_all_jobs(api, ingest)
        assert outcomes["projects.delete_data"].status == "failed"
        left = rows_of(pgsql, world)
        assert "runs" not in left
        assert left["experiments"] == 1
        assert deletion_row(pgsql, project_id)["finished_at"] is None

        clock.advance(3600)
        outcomes = await run_all_jobs(api, ingest)
        assert outcomes["projects.delete_data"].status == "succeeded"
        assert rows_of(pgsql, world) == {}
        assert deletion_row(pgsql, project_id)["result"]["runs"] == 5
    finally:
        with pgsql["experiment"].cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS experiments_refuse ON experiments")
            cursor.execute("DROP FUNCTION IF EXISTS refuse_once()")
            cursor.execute("DROP SEQUENCE IF EXISTS refuse_seq")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer nonsense"}, id="malformed"),
    ],
)
async def test_the_route_needs_a_service_token(api, auth_stub, project_id, pgsql, headers):
    response = await api.post(ROUTE, json=notice(project_id), headers=headers)
    await assert_problem(response, 401, "unauthorized")
    assert deletion_row(pgsql, project_id) is None


async def test_the_route_refuses_access_tokens_and_other_service_tokens(
    api, auth_stub, auth_signing_key, owner, project_id, pgsql
):
    forger = SigningKey.generate(kid=auth_signing_key.kid)
    refused = {
        "a user's access token": owner.token,
        "expired": service_token(auth_signing_key, ttl=-3600),
        "another issuer": service_token(auth_signing_key, issuer="someone"),
        "the users' audience": service_token(auth_signing_key, audience="etp"),
        "forged": service_token(forger),
    }
    for what, token in refused.items():
        response = await api.post(
            ROUTE, json=notice(project_id), headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 401, what
        await assert_problem(response, 401, "unauthorized")
    wrong_scope = service_token(auth_signing_key, scope="something-else")
    response = await api.post(
        ROUTE, json=notice(project_id), headers={"Authorization": f"Bearer {wrong_scope}"}
    )
    await assert_problem(response, 403, "forbidden")
    assert deletion_row(pgsql, project_id) is None

    # A service token opens no public route either.
    response = await api.get(
        "/api/v1/experiments",
        params={"project_id": str(project_id)},
        headers={"Authorization": f"Bearer {service_token(auth_signing_key)}"},
    )
    await assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b"{not json", 400, "malformed_json", id="malformed-json"),
        pytest.param({"project_id": "nope"}, 422, "validation_failed", id="wrong-types"),
        pytest.param({"extra": 1}, 422, "validation_failed", id="unknown-field"),
        pytest.param({"deleted_at": "2026-01-01T00:00:00"}, 422, "validation_failed", id="naive"),
    ],
)
async def test_a_bad_announcement_is_refused(
    api, auth_stub, auth_signing_key, project_id, pgsql, body, status, code
):
    headers = {"Authorization": f"Bearer {service_token(auth_signing_key)}"}
    if isinstance(body, bytes):
        response = await api.post(
            ROUTE, data=body, headers={**headers, "Content-Type": "application/json"}
        )
    else:
        response = await api.post(ROUTE, json={**notice(project_id), **body}, headers=headers)
    await assert_problem(response, status, code)
    assert deletion_row(pgsql, project_id) is None


async def test_a_huge_announcement_is_refused(api, auth_stub, auth_signing_key, project_id):
    headers = {"Authorization": f"Bearer {service_token(auth_signing_key)}"}
    body = {**notice(project_id), "pad": "x" * (2 * 1024 * 1024)}
    response = await api.post(ROUTE, json=body, headers=headers)
    await assert_problem(response, 413, "payload_too_large")


async def test_a_sensor_shared_with_two_deleted_projects_goes_with_the_second(
    api, ingest, auth_stub, auth_signing_key, owner, project_id, clock, pgsql
):
    """Its home moves only to a project that is not being deleted; when there is none left,
    it goes like any sensor of the project."""
    second = uuid.uuid4()
    auth_stub.grant(owner, second, "owner")
    sensor = await create_sensor(api, owner, project_id)
    await expect(
        await api.post(
            f"/api/v1/sensors/{sensor['id']}/projects",
            json={"project_id": str(second)},
            headers=owner.headers,
        ),
        201,
    )
    await announce(api, auth_signing_key, second)
    await announce(api, auth_signing_key, project_id)
    await until_refused(ingest, sensor)
    await run_all_jobs(api, ingest)
    assert count(pgsql, "SELECT count(*) FROM sensors WHERE id = %s", sensor["id"]) == 0
    assert count(pgsql, "SELECT count(*) FROM project_deletions WHERE finished_at IS NULL") == 0


async def test_the_deletion_job_is_due_at_once(api, ingest, auth_signing_key, project_id, clock):
    """Registered with its interval, the job still runs at the next claim after a recording."""
    await run_all_jobs(api, ingest)
    clock.advance(1)
    await announce(api, auth_signing_key, project_id)
    outcomes = await run_all_jobs(api, ingest)
    assert outcomes["projects.delete_data"].result["projects"] == 1
