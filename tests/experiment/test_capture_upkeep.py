"""The job `capture_sessions.reconcile` on the test's clock: a capture started with
`duration_seconds` stops itself when they have elapsed; a session still running in a run that
is not is closed."""

from tests.experiment.factories import (
    create_experiment,
    create_run_in_status,
    expect,
    start_capture,
)
from tests.experiment.job_kit import audit_of, run_jobs
from tests.problems import assert_problem


async def running_run(client, user, project_id) -> dict:
    experiment = await create_experiment(client, user, project_id, name="tunnel")
    return await create_run_in_status(client, user, experiment["id"], "running")


async def test_capture_with_a_duration_stops_itself_when_it_elapses(
    jobs_app, owner, editor, project_id, clock
):
    client = await jobs_app(capture_upkeep_interval=1)
    run = await running_run(client, editor, project_id)
    session = await expect(
        await client.post(
            f"/api/v1/runs/{run['id']}/capture-sessions",
            json={"duration_seconds": 90},
            headers=editor.headers,
        ),
        201,
    )
    started = session["started_at"]
    assert session["planned_stop_at"] is not None
    assert session["gaps"] == []
    path = f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}"

    clock.advance(89)
    assert (await run_jobs(client))["capture_sessions.reconcile"].result == {
        "stopped": 0,
        "closed": 0,
    }
    assert (await expect(await client.get(path, headers=editor.headers), 200))["status"] == (
        "running"
    )
    clock.advance(2)
    assert (await run_jobs(client))["capture_sessions.reconcile"].result["stopped"] == 1
    stopped = await expect(await client.get(path, headers=editor.headers), 200)
    assert stopped["status"] == "succeeded"
    assert stopped["stopped_at"] == stopped["planned_stop_at"]
    assert stopped["planned_stop_at"] > started
    entries = await audit_of(client, owner, project_id, session["id"])
    assert entries[-1]["action"] == "capture_session.stopped"
    assert entries[-1]["request_id"] == "job:capture_sessions.reconcile"
    # The run may finish now; nothing more to stop.
    await expect(
        await client.patch(
            f"/api/v1/runs/{run['id']}", json={"status": "succeeded"}, headers=editor.headers
        ),
        200,
    )
    clock.advance(60)
    assert (await run_jobs(client))["capture_sessions.reconcile"].result == {
        "stopped": 0,
        "closed": 0,
    }


async def test_stopped_early_capture_is_not_stopped_again(jobs_app, editor, project_id, clock):
    client = await jobs_app(capture_upkeep_interval=1)
    run = await running_run(client, editor, project_id)
    path = f"/api/v1/runs/{run['id']}/capture-sessions"
    session = await expect(
        await client.post(path, json={"duration_seconds": 60}, headers=editor.headers), 201
    )
    stopped = await expect(
        await client.post(f"{path}/{session['id']}/stop", json={}, headers=editor.headers), 200
    )
    clock.advance(120)
    assert (await run_jobs(client))["capture_sessions.reconcile"].result["stopped"] == 0
    again = await expect(await client.get(f"{path}/{session['id']}", headers=editor.headers), 200)
    assert again["stopped_at"] == stopped["stopped_at"]


async def test_duration_must_be_a_whole_positive_number_of_seconds(jobs_app, editor, project_id):
    client = await jobs_app(capture_upkeep_interval=1)
    run = await running_run(client, editor, project_id)
    path = f"/api/v1/runs/{run['id']}/capture-sessions"
    for duration in (0, -5, 1.5, "60", True, 30 * 86400 + 1):
        await assert_problem(
            await client.post(path, json={"duration_seconds": duration}, headers=editor.headers),
            422,
            "validation_failed",
        )


async def test_running_capture_of_an_ended_run_is_closed(
    jobs_app, owner, editor, project_id, clock, pgsql
):
    client = await jobs_app(capture_upkeep_interval=1)
    run = await running_run(client, editor, project_id)
    session = await start_capture(client, editor, run["id"])
    # What an older version or a direct change may leave: the run ended under a running session.
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "UPDATE runs SET status = 'succeeded', finished_at = now() WHERE id = %s", (run["id"],)
        )
    clock.advance(10)
    assert (await run_jobs(client))["capture_sessions.reconcile"].result["closed"] == 1
    closed = await expect(
        await client.get(
            f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}", headers=editor.headers
        ),
        200,
    )
    assert closed["status"] == "succeeded"
    assert closed["stopped_at"] is not None
    entries = await audit_of(client, owner, project_id, session["id"])
    assert entries[-1]["action"] == "capture_session.stopped"
