"""Project deletion in tests: the auth service's announcement (a service token minted with the
auth stub's key), a project full of everything the experiment and telemetry services keep, and
what is left of it in the database.

    world = await populate(api, ingest, auth_stub, owner, project_id, hook_url, clock)
    await announce(api, auth_signing_key, project_id)
    assert leftovers(pgsql, world) == {}
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from tests.experiment.artifact_kit import upload
from tests.experiment.factories import create_experiment, expect, set_run_status, start_capture
from tests.experiment.metric_kit import log_metrics, point
from tests.experiment.webhook_kit import subscribe
from tests.plugins.auth_stub import StubUser
from tests.telemetry_ingest.ingest_api import (
    accepted,
    batch,
    bind,
    create_sensor,
    linear,
    readings_at,
    send,
)
from tests.tokens import SigningKey

ROUTE = "/internal/v1/project-deletions"


def service_token(key: SigningKey, **claims: Any) -> str:
    """What the auth service sends: its own name as `sub`, the internal audience, the scope."""
    values: dict[str, Any] = {"audience": "etp-internal", "scope": "project-deletions", **claims}
    return key.mint("auth", **values)


def notice(project_id: Any, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "project_id": str(project_id),
        "deleted_at": datetime.now(UTC).isoformat(),
        **fields,
    }


async def announce(
    api: TestClient, key: SigningKey, project_id: Any, *, status: int = 200, **fields: Any
) -> Any:
    response = await api.post(
        ROUTE,
        json=notice(project_id, **fields),
        headers={"Authorization": f"Bearer {service_token(key)}"},
    )
    return await expect(response, status)


@dataclass
class World:
    """A project (`project_id`) with its own sensor, a sensor of its own shared into another
    project, a sensor of the other project shared into it, a running run capturing all three
    with telemetry, metrics and an artifact, a webhook, and settings; and the other project
    (`other_id`) with a run of its own bound to both shared sensors."""

    project_id: uuid.UUID
    other_id: uuid.UUID
    other_owner: StubUser
    own: dict[str, Any]
    shared_out: dict[str, Any]
    shared_in: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    other_run: dict[str, Any] = field(default_factory=dict)
    artifact_ids: list[str] = field(default_factory=list)


async def populate(
    api: TestClient,
    ingest: TestClient,
    auth_stub: Any,
    owner: StubUser,
    project_id: uuid.UUID,
    hook_url: str,
    *,
    runs: int = 1,
) -> World:
    other_id = uuid.uuid4()
    other_owner = auth_stub.member(other_id, "owner")
    auth_stub.grant(owner, other_id, "editor")
    auth_stub.grant(other_owner, project_id, "editor")
    profile = linear(a=2.0, b=1.0)
    world = World(
        project_id=project_id,
        other_id=other_id,
        other_owner=other_owner,
        own=await create_sensor(api, owner, project_id, profile=profile),
        shared_out=await create_sensor(api, owner, project_id, profile=profile),
        shared_in=await create_sensor(api, other_owner, other_id, profile=profile),
    )
    await _share(api, owner, world.shared_out, other_id)
    await _share(api, other_owner, world.shared_in, project_id)
    await subscribe(api, owner, project_id, hook_url, ["*"])
    await expect(
        await api.patch(
            f"/api/v1/project-settings/{project_id}",
            json={"stale_run_after_seconds": 3600},
            headers=owner.headers,
        ),
        200,
    )
    experiment = await create_experiment(api, owner, project_id)
    for n in range(runs):
        run = await expect(
            await api.post(
                f"/api/v1/experiments/{experiment['id']}/runs",
                json={"name": f"run {n}"},
                headers=owner.headers,
            ),
            201,
        )
        for sensor in (world.own, world.shared_out, world.shared_in):
            await bind(api, owner, run["id"], sensor["id"])
        run = await set_run_status(api, owner, run["id"], "running")
        await start_capture(api, owner, run["id"])
        await log_metrics(
            api, owner, run["id"], [point("loss", 1.0 / (s + 1), step=s) for s in range(20)]
        )
        artifact = await upload(api, owner, run["id"], f"weights {n}".encode())
        world.artifact_ids.append(artifact["id"])
        world.runs.append(run)

    other_experiment = await create_experiment(api, other_owner, other_id)
    world.other_run = await expect(
        await api.post(
            f"/api/v1/experiments/{other_experiment['id']}/runs",
            json={"name": "theirs"},
            headers=other_owner.headers,
        ),
        201,
    )
    for sensor in (world.shared_out, world.shared_in):
        await bind(api, other_owner, world.other_run["id"], sensor["id"])

    start = datetime.now(UTC) - timedelta(hours=2)
    for sensor in (world.own, world.shared_out, world.shared_in):
        await accepted(ingest, sensor["token"], batch(sensor, readings_at(start, 1.0, 2.0, 3.0)))
    # A refused batch leaves a row in the sensor's ingest error journal.
    refused = await send(ingest, world.own["token"], batch(world.own, [{"raw_value": 1}]))
    assert refused.status == 422, await refused.text()
    return world


async def _share(api: TestClient, user: StubUser, sensor: dict[str, Any], project: Any) -> None:
    response = await api.post(
        f"/api/v1/sensors/{sensor['id']}/projects",
        json={"project_id": str(project)},
        headers=user.headers,
    )
    await expect(response, 201)


# Every table that holds a project's rows, and how to find them (%(p)s: the project, %(s)s:
# its own sensors, %(r)s: its runs).
PROJECT_ROWS = {
    "experiments": "project_id = %(p)s",
    "runs": "project_id = %(p)s",
    "capture_sessions": "project_id = %(p)s",
    "capture_session_gaps": "sensor_id = ANY(%(s)s::uuid[])",
    "run_sensors": "project_id = %(p)s OR run_id = ANY(%(r)s::uuid[])",
    "sensors": "project_id = %(p)s OR id = ANY(%(s)s::uuid[])",
    "sensor_projects": "project_id = %(p)s OR sensor_id = ANY(%(s)s::uuid[])",
    "sensor_tokens": "sensor_id = ANY(%(s)s::uuid[])",
    "conversion_profiles": "sensor_id = ANY(%(s)s::uuid[])",
    "webhook_subscriptions": "project_id = %(p)s",
    "webhook_events": "project_id = %(p)s",
    "webhook_deliveries": "project_id = %(p)s",
    "run_metrics": "run_id = ANY(%(r)s::uuid[])",
    "run_metric_tiles": "run_id = ANY(%(r)s::uuid[])",
    "run_metric_summaries": "run_id = ANY(%(r)s::uuid[])",
    "run_metric_batches": "run_id = ANY(%(r)s::uuid[])",
    "artifacts": "project_id = %(p)s",
    "artifact_usage": "project_id = %(p)s",
    "project_settings": "project_id = %(p)s",
    "project_raw_policies": "project_id = %(p)s",
    "telemetry_records": "sensor_id = ANY(%(s)s::uuid[])",
    "telemetry_batches": "sensor_id = ANY(%(s)s::uuid[])",
    "telemetry_rollup": "sensor_id = ANY(%(s)s::uuid[])",
    "telemetry_rollup_pending": "sensor_id = ANY(%(s)s::uuid[])",
    "ingest_errors": "sensor_id = ANY(%(s)s::uuid[])",
}


def rows_of(pgsql: Any, world: World) -> dict[str, int]:
    """How many rows each table holds of the project (tables with none left out)."""
    params = {
        "p": str(world.project_id),
        "s": [world.own["id"]],
        "r": [run["id"] for run in world.runs],
    }
    counts = {}
    with pgsql["experiment"].cursor() as cursor:
        for table, where in PROJECT_ROWS.items():
            cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)
            count = cursor.fetchone()[0]
            if count:
                counts[table] = count
    return counts


def count(pgsql: Any, sql: str, *params: Any) -> int:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def deletion_row(pgsql: Any, project_id: Any) -> dict[str, Any] | None:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT event_id::text, recorded_at, finished_at, result FROM project_deletions"
            " WHERE project_id = %s",
            (str(project_id),),
        )
        row = cursor.fetchone()
    return None if row is None else dict(row)
