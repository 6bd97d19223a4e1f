"""The job list and history (GET /api/v1/jobs, …/{name}/runs): who may read them, what they
show, and the Idempotency-Key purge job on the test's clock."""

import uuid

import pytest

from tests.api_key_kit import RealAuth
from tests.experiment.factories import expect
from tests.experiment.job_kit import job_list, job_runs, run_jobs
from tests.problems import assert_problem

HOUR = 3600


async def test_operator_sees_every_job_with_its_last_run_and_history(jobs_app, operator, clock):
    client = await jobs_app()
    before = await job_list(client, operator)
    assert before == {}

    outcomes = await run_jobs(client)

    assert outcomes["idempotency_keys.purge"].status == "succeeded"
    jobs = await job_list(client, operator)
    assert set(jobs) == set(outcomes)
    purge = jobs["idempotency_keys.purge"]
    assert purge["service"] == "experiment"
    assert purge["interval_seconds"] == 3600.0
    assert purge["consecutive_failures"] == 0
    assert purge["leased_by"] is None
    assert purge["lease_until"] is None
    last = purge["last_run"]
    assert last["status"] == "succeeded"
    assert last["attempt"] == 1
    assert last["error"] is None
    assert last["result"] == {"purged": 0}
    assert last["worker"].startswith("experiment@")
    assert purge["next_run_at"] > last["finished_at"]

    clock.advance(HOUR)
    again = await run_jobs(client)
    assert "idempotency_keys.purge" in again
    history = await job_runs(client, operator, "idempotency_keys.purge")
    assert [run["id"] for run in history] == sorted((run["id"] for run in history), reverse=True)
    assert len(history) == 2
    assert (await job_list(client, operator))["idempotency_keys.purge"]["last_run"] == history[0]


async def test_jobs_not_yet_due_do_not_run(jobs_app, clock):
    client = await jobs_app()
    await run_jobs(client)
    clock.advance(HOUR - 1)
    assert "idempotency_keys.purge" not in await run_jobs(client)
    clock.advance(1)
    assert "idempotency_keys.purge" in await run_jobs(client)


async def test_project_owner_is_no_operator(jobs_app, owner):
    client = await jobs_app()
    await assert_problem(
        await client.get("/api/v1/jobs", headers=owner.headers), 403, "operator_only"
    )
    await assert_problem(
        await client.get("/api/v1/jobs/idempotency_keys.purge/runs", headers=owner.headers),
        403,
        "operator_only",
    )
    # Not even whether a job exists.
    await assert_problem(
        await client.get("/api/v1/jobs/nothing.here/runs", headers=owner.headers),
        403,
        "operator_only",
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic b3A6b3A="}],
)
async def test_jobs_need_a_valid_token(jobs_app, headers):
    client = await jobs_app()
    await assert_problem(await client.get("/api/v1/jobs", headers=headers), 401, "unauthorized")


async def test_unknown_job_is_404_and_bad_queries_are_refused(jobs_app, operator):
    client = await jobs_app()
    await run_jobs(client)
    for name in ("nothing.here", "x" * 101):
        await assert_problem(
            await client.get(f"/api/v1/jobs/{name}/runs", headers=operator.headers),
            404,
            "job_not_found",
        )
    for query in ("limit=0", "limit=501", "limit=ten", "unknown=1"):
        await assert_problem(
            await client.get(f"/api/v1/jobs?{query}", headers=operator.headers),
            422,
            "validation_failed",
        )
    await assert_problem(
        await client.get("/api/v1/jobs?cursor=forged", headers=operator.headers),
        400,
        "invalid_cursor",
    )
    await assert_problem(
        await client.get(
            "/api/v1/jobs/idempotency_keys.purge/runs?cursor=eyJpZCI6LTF9",
            headers=operator.headers,
        ),
        400,
        "invalid_cursor",
    )


async def test_api_keys_of_an_operator_without_limits_see_the_jobs(
    service_app_client, make_settings, aiohttp_client, pgsql
):
    from experiment_service.app import create_app

    auth = RealAuth(await service_app_client("auth"))
    alice = await auth.sign_up("alice")
    project_id = await auth.project(alice)
    settings = make_settings("experiment", auth_url=auth.url, operators=(uuid.UUID(alice.id),))
    client = await aiohttp_client(create_app(settings))
    wide = await auth.key(alice)
    narrow = await auth.key(alice, project_id=project_id)
    await expect(await client.get("/api/v1/jobs", headers=auth.through(alice, wide).headers), 200)
    await assert_problem(
        await client.get("/api/v1/jobs", headers=auth.through(alice, narrow).headers),
        403,
        "operator_only",
    )


async def test_idempotency_keys_are_purged_after_24_hours(jobs_app, editor, project_id, clock):
    client = await jobs_app()
    body = {"project_id": str(project_id), "name": "Wind tunnel"}
    keyed = {**editor.headers, "Idempotency-Key": "k-1"}
    first = await expect(await client.post("/api/v1/experiments", json=body, headers=keyed), 201)
    clock.advance(23 * HOUR)
    assert (await run_jobs(client))["idempotency_keys.purge"].result == {"purged": 0}
    replayed = await client.post("/api/v1/experiments", json=body, headers=keyed)
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert (await replayed.json())["id"] == first["id"]

    clock.advance(HOUR + 1)
    assert (await run_jobs(client))["idempotency_keys.purge"].result == {"purged": 1}
    again = await expect(await client.post("/api/v1/experiments", json=body, headers=keyed), 201)
    assert again["id"] != first["id"]
