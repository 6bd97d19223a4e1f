"""API helpers for experiment-service tests: each asserts the expected status and returns the JSON.

experiment = await create_experiment(client, user, project_id, name="Wind tunnel")
run = await create_run(client, user, experiment["id"], params={"lr": 0.1})
run = await set_run_status(client, user, run["id"], "running")
"""

import uuid
from typing import Any

from aiohttp.test_utils import TestClient

from tests.plugins.auth_stub import StubUser


async def expect(response: Any, status: int) -> Any:
    """Asserts the status; returns the JSON body (None when empty)."""
    text = await response.text()
    assert response.status == status, f"expected {status}, got {response.status}: {text}"
    return await response.json() if text else None


# The factories take an `expect` status argument, which hides the function inside them.
_expect = expect


async def create_experiment(
    client: TestClient,
    user: StubUser,
    project_id: uuid.UUID | str,
    *,
    expect: int = 201,
    **overrides: Any,
) -> dict[str, Any]:
    body = {"project_id": str(project_id), "name": f"experiment {uuid.uuid4().hex[:8]}"}
    body.update(overrides)
    response = await client.post("/api/v1/experiments", json=body, headers=user.headers)
    return await _expect(response, expect)


async def create_run(
    client: TestClient,
    user: StubUser,
    experiment_id: uuid.UUID | str,
    *,
    expect: int = 201,
    **overrides: Any,
) -> dict[str, Any]:
    body = {"name": f"run {uuid.uuid4().hex[:8]}", **overrides}
    response = await client.post(
        f"/api/v1/experiments/{experiment_id}/runs", json=body, headers=user.headers
    )
    return await _expect(response, expect)


async def set_experiment_status(
    client: TestClient,
    user: StubUser,
    experiment_id: uuid.UUID | str,
    status: str,
    *,
    expect: int = 200,
) -> dict[str, Any]:
    response = await client.patch(
        f"/api/v1/experiments/{experiment_id}", json={"status": status}, headers=user.headers
    )
    return await _expect(response, expect)


async def set_run_status(
    client: TestClient,
    user: StubUser,
    run_id: uuid.UUID | str,
    status: str,
    *,
    expect: int = 200,
) -> dict[str, Any]:
    response = await client.patch(
        f"/api/v1/runs/{run_id}", json={"status": status}, headers=user.headers
    )
    return await _expect(response, expect)


# The shortest way from draft to each run status.
RUN_STATUS_PATHS: dict[str, tuple[str, ...]] = {
    "draft": (),
    "running": ("running",),
    "succeeded": ("running", "succeeded"),
    "failed": ("running", "failed"),
    "archived": ("running", "succeeded", "archived"),
}


async def create_run_in_status(
    client: TestClient,
    user: StubUser,
    experiment_id: uuid.UUID | str,
    status: str,
    **overrides: Any,
) -> dict[str, Any]:
    run = await create_run(client, user, experiment_id, **overrides)
    for step in RUN_STATUS_PATHS[status]:
        run = await set_run_status(client, user, run["id"], step)
    return run


async def start_capture(
    client: TestClient, user: StubUser, run_id: uuid.UUID | str, *, expect: int = 201
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/runs/{run_id}/capture-sessions", json={}, headers=user.headers
    )
    return await _expect(response, expect)


async def share_sensor(
    api: TestClient, auth_stub: Any, owner: StubUser, sensor: dict[str, Any]
) -> uuid.UUID:
    """A new project that `owner` edits and the sensor is shared into; its id."""
    shared = uuid.uuid4()
    auth_stub.grant(owner, shared, "editor")
    response = await api.post(
        f"/api/v1/sensors/{sensor['id']}/projects",
        json={"project_id": str(shared)},
        headers=owner.headers,
    )
    await expect(response, 201)
    return shared


def audit_rows(pgsql: Any, entity_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """The audit rows of one entity, oldest first, as the database holds them."""
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT project_id, actor_id, actor_role, action, entity_type, entity_id, parent_id,"
            " before, after, request_id FROM audit_log WHERE entity_id = %s ORDER BY id",
            (str(entity_id),),
        )
        return [dict(row) for row in cursor]


def audit_count(pgsql: Any) -> int:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_log")
        return cursor.fetchone()[0]
