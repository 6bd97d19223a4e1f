"""What archiving and finishing do to experiments, runs and their capture sessions."""

import pytest

from tests.experiment.factories import (
    create_experiment,
    create_run,
    create_run_in_status,
    set_experiment_status,
    set_run_status,
    start_capture,
)
from tests.problems import assert_problem


async def stop_capture(client, editor, run_id, session_id, **body):
    response = await client.post(
        f"/api/v1/runs/{run_id}/capture-sessions/{session_id}/stop",
        json=body,
        headers=editor.headers,
    )
    assert response.status == 200, await response.text()
    return await response.json()


@pytest.mark.parametrize("status", ["finished", "failed"])
async def test_finish_experiment_with_a_running_run_is_409(client, editor, project_id, status):
    experiment = await create_experiment(client, editor, project_id)
    await set_experiment_status(client, editor, experiment["id"], "running")
    await create_run_in_status(client, editor, experiment["id"], "running")

    response = await client.patch(
        f"/api/v1/experiments/{experiment['id']}", json={"status": status}, headers=editor.headers
    )

    await assert_problem(response, 409, "experiment_has_running_runs")


async def test_update_archived_experiment_is_409(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    await set_experiment_status(client, editor, experiment["id"], "archived")

    response = await client.patch(
        f"/api/v1/experiments/{experiment['id']}", json={"name": "new"}, headers=editor.headers
    )

    await assert_problem(response, 409, "experiment_archived")


async def test_start_run_of_archived_experiment_is_409(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run(client, editor, experiment["id"])
    await set_experiment_status(client, editor, experiment["id"], "archived")

    response = await client.patch(
        f"/api/v1/runs/{run['id']}", json={"status": "running"}, headers=editor.headers
    )

    await assert_problem(response, 409, "experiment_archived")


async def test_update_archived_run_is_409(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run_in_status(client, editor, experiment["id"], "archived")

    response = await client.patch(
        f"/api/v1/runs/{run['id']}", json={"notes": "late note"}, headers=editor.headers
    )

    await assert_problem(response, 409, "run_archived")


async def test_archive_run_archives_its_capture_sessions(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    done = await start_capture(client, editor, run["id"])
    await stop_capture(client, editor, run["id"], done["id"])
    broken = await start_capture(client, editor, run["id"])
    await stop_capture(client, editor, run["id"], broken["id"], status="failed", reason="cable")
    await set_run_status(client, editor, run["id"], "succeeded")

    await set_run_status(client, editor, run["id"], "archived")

    listed = await client.get(f"/api/v1/runs/{run['id']}/capture-sessions", headers=editor.headers)
    assert [s["status"] for s in (await listed.json())["items"]] == ["archived", "archived"]
    events = await client.get(f"/api/v1/runs/{run['id']}/events", headers=editor.headers)
    assert [e["action"] for e in (await events.json())["items"]][-1] == "run.status_changed"
