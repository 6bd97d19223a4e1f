"""The job `runs.fail_stale` on the test's clock: a running run with no change, telemetry or
metric for its project's stale time (default 24 h) becomes failed with `failure_reason: stale`,
its running capture session is stopped, each with an audit row and webhook events."""

import asyncio

from tests.experiment.factories import (
    create_experiment,
    create_run_in_status,
    expect,
    start_capture,
)
from tests.experiment.job_kit import audit_of, hooked, run_jobs
from tests.experiment.metric_kit import point, post_metrics
from tests.experiment.webhook_kit import subscribe
from tests.plugins.waiting import eventually
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import batch, bearer, bind, create_sensor, reading

HOUR = 3600


async def get_run(client, user, run_id) -> dict:
    return await expect(await client.get(f"/api/v1/runs/{run_id}", headers=user.headers), 200)


async def test_run_without_news_for_a_day_fails_as_stale_with_its_capture(
    jobs_app, mockserver_host, receiver, owner, editor, project_id, clock
):
    client = await jobs_app(stale_runs_interval=60, **hooked(mockserver_host))
    hook = receiver()
    events = ["run.failed", "run.finished", "capture_session.stopped"]
    await subscribe(client, editor, project_id, hook.url, events)
    experiment = await create_experiment(client, editor, project_id, name="tunnel")
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    session = await start_capture(client, editor, run["id"])
    quiet = await create_run_in_status(client, editor, experiment["id"], "succeeded")

    clock.advance(23 * HOUR)
    assert (await run_jobs(client))["runs.fail_stale"].result == {"failed": 0}
    assert (await get_run(client, editor, run["id"]))["status"] == "running"

    # A day after the last change (which came a moment after the clock's start: the setup).
    clock.advance(HOUR + 600)
    assert (await run_jobs(client))["runs.fail_stale"].result == {"failed": 1}

    failed = await get_run(client, editor, run["id"])
    assert failed["status"] == "failed"
    assert failed["failure_reason"] == "stale"
    assert failed["finished_at"].replace("Z", "+00:00") == clock().isoformat()
    assert (await get_run(client, editor, quiet["id"]))["failure_reason"] is None
    stopped = await expect(
        await client.get(
            f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}", headers=editor.headers
        ),
        200,
    )
    assert stopped["status"] == "failed"
    assert "stale" in stopped["failure_reason"]

    entry = (await audit_of(client, owner, project_id, run["id"]))[-1]
    assert entry["action"] == "run.status_changed"
    assert entry["actor_id"] is None
    assert entry["actor_role"] is None
    assert entry["request_id"] == "job:runs.fail_stale"
    assert entry["after"]["failure_reason"] == "stale"
    session_entries = await audit_of(client, owner, project_id, session["id"])
    assert [e["action"] for e in session_entries][-1] == "capture_session.stopped"
    assert session_entries[-1]["actor_id"] is None

    # The stale run's three events (the clock jumps a day under the deliveries in flight, so a
    # lease may run out and an event come twice: each is counted once, by its id).
    def stale_calls():
        return [c for c in hook.events if c.json["data"]["id"] in (run["id"], session["id"])]

    calls = await eventually(lambda: len(stale_calls()) >= 3 and stale_calls())
    assert sorted(c.event_type for c in calls) == sorted(events)
    for call in calls:
        assert call.json["actor"] is None
    failed_event = next(c for c in calls if c.event_type == "run.failed")
    assert failed_event.json["data"]["failure_reason"] == "stale"

    # Once: running the job again changes nothing and sends no new event.
    sent = {c.event_id for c in hook.calls}
    clock.advance(HOUR)
    assert (await run_jobs(client))["runs.fail_stale"].result == {"failed": 0}
    await asyncio.sleep(0.3)
    assert {c.event_id for c in hook.calls} == sent


async def test_a_metric_or_telemetry_keeps_a_run_alive(jobs_app, ingest, editor, project_id, clock):
    client = await jobs_app()
    experiment = await create_experiment(client, editor, project_id, name="tunnel")
    by_metric = await create_run_in_status(client, editor, experiment["id"], "running")
    by_telemetry = await create_run_in_status(client, editor, experiment["id"], "running")
    sensor = await create_sensor(client, editor, project_id)
    await bind(client, editor, by_telemetry["id"], sensor["id"])
    clock.advance(20 * HOUR)
    response = await post_metrics(client, editor, by_metric["id"], [point("loss", 0.5, step=1)])
    assert response.status == 201, await response.text()
    response = await ingest.post(
        "/api/v1/telemetry",
        json=batch(sensor, [reading(clock(), 1.0)], run_id=by_telemetry["id"]),
        headers=bearer(sensor["token"]),
    )
    assert response.status == 202, await response.text()

    clock.advance(23 * HOUR)  # 43 h after the last change, 23 h after the last news
    assert (await run_jobs(client))["runs.fail_stale"].result == {"failed": 0}
    clock.advance(2 * HOUR)
    assert (await run_jobs(client))["runs.fail_stale"].result == {"failed": 2}
    for run in (by_metric, by_telemetry):
        assert (await get_run(client, editor, run["id"]))["failure_reason"] == "stale"


async def test_project_stale_time_is_its_own(jobs_app, owner, editor, project_id, clock):
    client = await jobs_app()
    settings = await expect(
        await client.patch(
            f"/api/v1/project-settings/{project_id}",
            json={"stale_run_after_seconds": HOUR},
            headers=owner.headers,
        ),
        200,
    )
    assert settings["stale_run_after_seconds"] == HOUR
    experiment = await create_experiment(client, editor, project_id, name="tunnel")
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    clock.advance(HOUR + 1)
    assert (await run_jobs(client))["runs.fail_stale"].result == {"failed": 1}
    assert (await get_run(client, editor, run["id"]))["status"] == "failed"


async def test_a_change_of_the_run_keeps_it_alive(jobs_app, editor, project_id, clock, pgsql):
    client = await jobs_app()
    experiment = await create_experiment(client, editor, project_id, name="tunnel")
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    clock.advance(25 * HOUR)
    # The run changed just now (its updated_at is the database's time, so the clock goes back).
    await expect(
        await client.patch(
            f"/api/v1/runs/{run['id']}", json={"notes": "still going"}, headers=editor.headers
        ),
        200,
    )
    clock.advance(-25 * HOUR + 23 * HOUR)
    assert (await run_jobs(client))["runs.fail_stale"].result == {"failed": 0}
    assert (await get_run(client, editor, run["id"]))["status"] == "running"


async def test_project_settings_rules(jobs_app, owner, editor, viewer, project_id, auth_stub):
    client = await jobs_app()
    path = f"/api/v1/project-settings/{project_id}"
    fresh = await expect(await client.get(path, headers=viewer.headers), 200)
    assert fresh == {
        "project_id": str(project_id),
        "stale_run_after_seconds": None,
        "telemetry_raw_retention_days": None,
        "telemetry_rollup_retention_days": None,
        "updated_by": None,
        "updated_at": None,
    }
    await assert_problem(
        await client.patch(path, json={"stale_run_after_seconds": 600}, headers=editor.headers),
        403,
        "forbidden",
    )
    stranger = auth_stub.user()
    await assert_problem(await client.get(path, headers=stranger.headers), 404, "not_found")
    await assert_problem(
        await client.patch(path, json={"stale_run_after_seconds": 600}, headers=stranger.headers),
        404,
        "not_found",
    )
    for body in (
        {},
        {"stale_run_after_seconds": 59},
        {"stale_run_after_seconds": "600"},
        {"stale_run_after_seconds": True},
        {"telemetry_raw_retention_days": 0},
        {"colour": "blue"},
    ):
        await assert_problem(
            await client.patch(path, json=body, headers=owner.headers), 422, "validation_failed"
        )
    await assert_problem(
        await client.patch(
            path, data=b"{", headers={**owner.headers, "Content-Type": "application/json"}
        ),
        400,
        "malformed_json",
    )
    changed = await expect(
        await client.patch(
            path,
            json={"telemetry_raw_retention_days": 7, "telemetry_rollup_retention_days": 30},
            headers=owner.headers,
        ),
        200,
    )
    assert changed["updated_by"] == str(owner.id)
    await assert_problem(
        await client.patch(path, json={"telemetry_raw_retention_days": 31}, headers=owner.headers),
        422,
        "retention_out_of_order",
    )
    reset = await expect(
        await client.patch(
            path, json={"telemetry_rollup_retention_days": None}, headers=owner.headers
        ),
        200,
    )
    assert reset["telemetry_rollup_retention_days"] is None
    assert reset["telemetry_raw_retention_days"] == 7
    entries = await audit_of(client, owner, project_id, project_id)
    assert [e["action"] for e in entries] == ["project_settings.updated"] * 2
    assert entries[1]["before"] == {"telemetry_rollup_retention_days": 30}
    assert entries[1]["after"] == {"telemetry_rollup_retention_days": None}
