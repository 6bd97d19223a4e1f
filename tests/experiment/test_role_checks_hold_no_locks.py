"""A role check may be an HTTP call to the auth service: no mutation makes it while its
transaction holds a row lock. Each test stops the role source inside the check and, from a
second connection, locks the row the mutation is about (`FOR UPDATE NOWAIT` fails at once on a
locked row)."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from backend_common.auth import AccessClaims
from backend_common.rbac import Membership, Role
from experiment_service.app import create_app
from tests.experiment.factories import create_experiment, create_run, create_run_in_status, expect

SENSORS = "/api/v1/sensors"
HOOKS = "/api/v1/webhooks"


@dataclass
class GatedRoles:
    """Roles from a table. While `held`, each membership question queues a gate and waits
    until the test opens it."""

    roles: dict[tuple[uuid.UUID, uuid.UUID], Role] = field(default_factory=dict)
    held: bool = False
    gates: asyncio.Queue[asyncio.Event] = field(default_factory=asyncio.Queue)

    async def membership(self, caller: AccessClaims, project_id: uuid.UUID) -> Membership | None:
        if self.held:
            gate = asyncio.Event()
            await self.gates.put(gate)
            await gate.wait()
        role = self.roles.get((caller.user_id, project_id))
        return None if role is None else Membership(role)


@dataclass
class Scene:
    client: Any
    user: Any
    project_id: uuid.UUID
    experiment: dict[str, Any]
    run: dict[str, Any]
    hook_url: str


@pytest.fixture
def roles() -> GatedRoles:
    return GatedRoles()


@pytest.fixture
async def scene(
    pgsql, aiohttp_client, make_settings, clock, auth_stub, roles, mockserver_host, mockserver_info
) -> Scene:
    settings = make_settings("experiment", webhook_allowed_hosts=(mockserver_host,))
    client = await aiohttp_client(create_app(settings, roles=roles, clock=clock))
    project_id = uuid.uuid4()
    user = auth_stub.user()
    roles.roles[(user.id, project_id)] = Role.OWNER
    experiment = await create_experiment(client, user, project_id)
    run = await create_run(client, user, experiment["id"])
    hook_url = mockserver_info.url("hooks/unused")
    return Scene(client, user, project_id, experiment, run, hook_url)


async def _sensor(scene: Scene) -> str:
    body = {
        "project_id": str(scene.project_id),
        "name": "thermo",
        "type": "temperature",
        "input_unit": "V",
        "display_unit": "C",
    }
    response = await scene.client.post(SENSORS, json=body, headers=scene.user.headers)
    return (await expect(response, 201))["id"]


async def _webhook(scene: Scene) -> str:
    # Inactive: nothing is sent to the target.
    body = {
        "project_id": str(scene.project_id),
        "target_url": scene.hook_url,
        "event_types": ["*"],
        "active": False,
    }
    response = await scene.client.post(HOOKS, json=body, headers=scene.user.headers)
    return (await expect(response, 201))["id"]


Prepare = Callable[[Scene], Awaitable[tuple[str, str, Any, str, str]]]


async def _update_run(s: Scene) -> tuple[str, str, Any, str, str]:
    return "PATCH", f"/api/v1/runs/{s.run['id']}", {"name": "renamed"}, "runs", s.run["id"]


async def _start_run(s: Scene) -> tuple[str, str, Any, str, str]:
    return "PATCH", f"/api/v1/runs/{s.run['id']}", {"status": "running"}, "runs", s.run["id"]


async def _delete_run(s: Scene) -> tuple[str, str, Any, str, str]:
    return "DELETE", f"/api/v1/runs/{s.run['id']}", None, "runs", s.run["id"]


async def _batch_status(s: Scene) -> tuple[str, str, Any, str, str]:
    body = {"run_ids": [s.run["id"]], "status": "running"}
    return "POST", "/api/v1/runs:batch-status", body, "runs", s.run["id"]


async def _bulk_tags(s: Scene) -> tuple[str, str, Any, str, str]:
    body = {"run_ids": [s.run["id"]], "add": ["a"]}
    return "POST", "/api/v1/runs:bulk-tags", body, "runs", s.run["id"]


async def _create_run(s: Scene) -> tuple[str, str, Any, str, str]:
    path = f"/api/v1/experiments/{s.experiment['id']}/runs"
    return "POST", path, {"name": "next"}, "experiments", s.experiment["id"]


async def _update_experiment(s: Scene) -> tuple[str, str, Any, str, str]:
    path = f"/api/v1/experiments/{s.experiment['id']}"
    return "PATCH", path, {"name": "renamed"}, "experiments", s.experiment["id"]


async def _start_capture(s: Scene) -> tuple[str, str, Any, str, str]:
    run = await create_run_in_status(s.client, s.user, s.experiment["id"], "running")
    return "POST", f"/api/v1/runs/{run['id']}/capture-sessions", {}, "runs", run["id"]


async def _bind_sensor(s: Scene) -> tuple[str, str, Any, str, str]:
    body = {"sensor_id": await _sensor(s)}
    return "POST", f"/api/v1/runs/{s.run['id']}/sensors", body, "runs", s.run["id"]


async def _update_sensor(s: Scene) -> tuple[str, str, Any, str, str]:
    sensor_id = await _sensor(s)
    return "PATCH", f"{SENSORS}/{sensor_id}", {"name": "renamed"}, "sensors", sensor_id


async def _rotate_sensor_token(s: Scene) -> tuple[str, str, Any, str, str]:
    sensor_id = await _sensor(s)
    return "POST", f"{SENSORS}/{sensor_id}/rotate-token", {}, "sensors", sensor_id


async def _publish_profile(s: Scene) -> tuple[str, str, Any, str, str]:
    sensor_id = await _sensor(s)
    body = {"version": "v1", "kind": "linear", "payload": {"a": 1, "b": 0}}
    path = f"{SENSORS}/{sensor_id}/conversion-profiles"
    profile = await expect(await s.client.post(path, json=body, headers=s.user.headers), 201)
    return "POST", f"{path}/{profile['id']}/publish", {}, "sensors", sensor_id


async def _update_webhook(s: Scene) -> tuple[str, str, Any, str, str]:
    webhook_id = await _webhook(s)
    body = {"description": "changed"}
    return "PATCH", f"{HOOKS}/{webhook_id}", body, "webhook_subscriptions", webhook_id


async def _log_metrics(s: Scene) -> tuple[str, str, Any, str, str]:
    run = await create_run_in_status(s.client, s.user, s.experiment["id"], "running")
    body = {"metrics": [{"name": "loss", "value": 0.5}]}
    return "POST", f"/api/v1/runs/{run['id']}/metrics", body, "runs", run["id"]


CASES: dict[str, tuple[Prepare, int]] = {
    "update_run": (_update_run, 200),
    "start_run": (_start_run, 200),
    "delete_run": (_delete_run, 204),
    "batch_run_status": (_batch_status, 200),
    "bulk_run_tags": (_bulk_tags, 200),
    "create_run": (_create_run, 201),
    "update_experiment": (_update_experiment, 200),
    "start_capture_session": (_start_capture, 201),
    "bind_run_sensor": (_bind_sensor, 201),
    "update_sensor": (_update_sensor, 200),
    "rotate_sensor_token": (_rotate_sensor_token, 200),
    "publish_conversion_profile": (_publish_profile, 200),
    "update_webhook": (_update_webhook, 200),
    "log_run_metrics": (_log_metrics, 201),
}


async def _row_is_unlocked(database_url: Any, table: str, row_id: uuid.UUID) -> bool:
    conn = await asyncpg.connect(database_url("experiment"))
    try:
        async with conn.transaction():
            await conn.execute(f"SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE NOWAIT", row_id)
    except asyncpg.LockNotAvailableError:
        return False
    finally:
        await conn.close()
    return True


@pytest.mark.parametrize("route", CASES)
async def test_role_checks_run_while_the_row_is_unlocked(scene, roles, database_url, route):
    prepare, status = CASES[route]
    method, path, body, table, row_id = await prepare(scene)
    roles.held = True
    request = asyncio.ensure_future(
        scene.client.request(method, path, json=body, headers=scene.user.headers)
    )
    checks = []
    while not request.done():
        asked = asyncio.ensure_future(roles.gates.get())
        await asyncio.wait({request, asked}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if not asked.done():
            asked.cancel()
            assert request.done(), "the request neither asked for a role nor finished"
            break
        checks.append(await _row_is_unlocked(database_url, table, uuid.UUID(row_id)))
        asked.result().set()
    await expect(request.result(), status)
    assert checks, "no role was asked for"
    assert all(checks), f"a role check ran while the row was locked: {checks}"
