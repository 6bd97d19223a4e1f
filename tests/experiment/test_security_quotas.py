"""Quotas: an editor cannot make a project hold any number of sensors or an experiment any
number of runs, and one bulk change cannot queue any number of outbound webhook POSTs (500 runs
times 50 subscriptions used to queue 25,000). The counts hold under concurrent requests."""

import asyncio
import uuid
from typing import Any

import pytest

from experiment_service.app import create_app
from tests.experiment.factories import create_experiment, create_run, expect
from tests.experiment.sensor_kit import SENSORS, sensor_body, sensor_url
from tests.experiment.webhook_kit import count_rows, subscribe
from tests.problems import assert_problem


@pytest.fixture
def experiment_app(pgsql, aiohttp_client, make_settings, clock):
    """The experiment service with other settings."""

    async def start(**settings: Any):
        return await aiohttp_client(
            create_app(make_settings("experiment", **settings), clock=clock)
        )

    return start


def rows(pgsql, sql: str, *params: Any) -> int:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def sensors_in(pgsql, project_id) -> int:
    return rows(
        pgsql, "SELECT count(*) FROM sensor_projects WHERE project_id = %s", str(project_id)
    )


async def test_a_project_holds_at_most_its_sensor_quota(
    experiment_app, pgsql, editor, project_id, auth_stub
):
    client = await experiment_app(max_sensors_per_project=2)
    for _ in range(2):
        await expect(
            await client.post(SENSORS, json=sensor_body(project_id), headers=editor.headers), 201
        )

    refused = await client.post(SENSORS, json=sensor_body(project_id), headers=editor.headers)

    body = await assert_problem(refused, 409, "sensor_limit")
    assert "at most 2 sensors" in body["detail"]
    assert sensors_in(pgsql, project_id) == 2
    # Sharing a sensor of another project with the full one counts too.
    other = uuid.uuid4()
    auth_stub.grant(editor, other, "owner")
    shared = await expect(
        await client.post(SENSORS, json=sensor_body(other), headers=editor.headers), 201
    )
    refused = await client.post(
        sensor_url(shared["id"]) + "/projects",
        json={"project_id": str(project_id)},
        headers=editor.headers,
    )
    await assert_problem(refused, 409, "sensor_limit")
    assert sensors_in(pgsql, project_id) == 2


async def test_concurrent_sensor_creates_stop_at_the_quota(
    experiment_app, pgsql, editor, project_id
):
    client = await experiment_app(max_sensors_per_project=3)

    answers = await asyncio.gather(
        *(
            client.post(SENSORS, json=sensor_body(project_id), headers=editor.headers)
            for _ in range(8)
        )
    )

    assert sorted(answer.status for answer in answers) == [201] * 3 + [409] * 5
    assert sensors_in(pgsql, project_id) == 3


async def test_an_experiment_holds_at_most_its_run_quota(experiment_app, pgsql, editor, project_id):
    client = await experiment_app(max_runs_per_experiment=2)
    experiment = await create_experiment(client, editor, project_id)
    other = await create_experiment(client, editor, project_id)
    for _ in range(2):
        await create_run(client, editor, experiment["id"])

    refused = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs",
        json={"name": "one more"},
        headers=editor.headers,
    )

    body = await assert_problem(refused, 409, "run_limit")
    assert "at most 2 runs" in body["detail"]
    assert count_rows(pgsql, "runs") == 2
    await create_run(client, editor, other["id"])  # the quota is per experiment


async def test_concurrent_run_creates_stop_at_the_quota(experiment_app, pgsql, editor, project_id):
    client = await experiment_app(max_runs_per_experiment=3)
    experiment = await create_experiment(client, editor, project_id)
    url = f"/api/v1/experiments/{experiment['id']}/runs"

    answers = await asyncio.gather(
        *(client.post(url, json={"name": f"run {n}"}, headers=editor.headers) for n in range(8))
    )

    assert sorted(answer.status for answer in answers) == [201] * 3 + [409] * 5
    assert count_rows(pgsql, "runs") == 3


async def test_a_bulk_change_past_the_fan_out_limit_is_422_and_queues_nothing(
    make_hooks_client, pgsql, editor, project_id, receiver
):
    client = await make_hooks_client(webhook_max_deliveries_per_change=5)
    experiment = await create_experiment(client, editor, project_id)
    runs = [await create_run(client, editor, experiment["id"]) for _ in range(2)]
    for _ in range(3):
        await subscribe(client, editor, project_id, receiver().url, ["run.tags_updated"])
    events_before = count_rows(pgsql, "webhook_events")

    refused = await client.post(
        "/api/v1/runs:bulk-tags",
        json={"run_ids": [run["id"] for run in runs], "add": ["flood"]},
        headers=editor.headers,
    )

    body = await assert_problem(refused, 422, "webhook_fanout_limit")
    assert "6 webhook deliveries" in body["detail"]
    assert "at most 5" in body["detail"]
    assert count_rows(pgsql, "webhook_deliveries") == 0
    assert count_rows(pgsql, "webhook_events") == events_before
    assert rows(pgsql, "SELECT count(*) FROM runs WHERE 'flood' = ANY (tags)") == 0
    # One run's change (3 deliveries) is within the limit.
    await expect(
        await client.post(
            "/api/v1/runs:bulk-tags",
            json={"run_ids": [runs[0]["id"]], "add": ["flood"]},
            headers=editor.headers,
        ),
        200,
    )
    assert count_rows(pgsql, "webhook_deliveries") == 3


async def test_the_fan_out_limit_counts_only_subscriptions_that_want_the_event(
    make_hooks_client, pgsql, editor, project_id, receiver
):
    client = await make_hooks_client(webhook_max_deliveries_per_change=2)
    experiment = await create_experiment(client, editor, project_id)
    runs = [await create_run(client, editor, experiment["id"]) for _ in range(2)]
    await subscribe(client, editor, project_id, receiver().url, ["run.tags_updated"])
    for _ in range(3):
        await subscribe(client, editor, project_id, receiver().url, ["run.started"])

    tagged = await client.post(
        "/api/v1/runs:bulk-tags",
        json={"run_ids": [run["id"] for run in runs], "add": ["ok"]},
        headers=editor.headers,
    )
    started = await client.post(
        "/api/v1/runs:batch-status",
        json={"run_ids": [run["id"] for run in runs], "status": "running"},
        headers=editor.headers,
    )

    await expect(tagged, 200)
    await assert_problem(started, 422, "webhook_fanout_limit")
    assert rows(pgsql, "SELECT count(*) FROM runs WHERE status = 'running'") == 0
