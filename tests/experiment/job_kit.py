"""Background jobs in tests: an experiment app whose operator may read the job list, the jobs
run on the test's clock (`run_jobs`), and the job list and history as the API shows them.

    client = await jobs_app()
    clock.advance(25 * 3600)
    outcomes = await run_jobs(client)
    job = (await job_list(client, operator))["runs.fail_stale"]
"""

from typing import Any

from aiohttp.test_utils import TestClient

from backend_common.jobs import RunOutcome
from experiment_service.app import JOB_RUNNER
from tests.experiment.factories import expect
from tests.plugins.auth_stub import StubUser


async def run_jobs(client: TestClient) -> dict[str, RunOutcome]:
    """Runs every job of the app that is due on its clock; how each ended, by name."""
    return {outcome.name: outcome for outcome in await client.app[JOB_RUNNER].run_due()}


async def job_list(client: TestClient, operator: StubUser) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await expect(await client.get(f"/api/v1/jobs{query}", headers=operator.headers), 200)
        jobs.update({job["name"]: job for job in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return jobs


async def job_runs(client: TestClient, operator: StubUser, name: str) -> list[dict[str, Any]]:
    page = await expect(
        await client.get(f"/api/v1/jobs/{name}/runs?limit=500", headers=operator.headers), 200
    )
    return page["items"]


def hooked(mockserver_host: str) -> dict[str, Any]:
    """Settings of a `jobs_app` whose webhook dispatcher sends to the mockserver."""
    return {
        "webhook_dispatcher_enabled": True,
        "webhook_allowed_hosts": (mockserver_host,),
        "webhook_poll_interval": 0.05,
        "webhook_timeout": 1.0,
        "webhook_lease_seconds": 5.0,
    }


async def audit_of(
    client: TestClient, user: StubUser, project_id: Any, entity_id: Any
) -> list[dict[str, Any]]:
    page = await expect(
        await client.get(
            "/api/v1/audit",
            params={"project_id": str(project_id), "entity_id": str(entity_id), "limit": "500"},
            headers=user.headers,
        ),
        200,
    )
    return page["items"]
