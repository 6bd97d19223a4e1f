"""The job `sensors.watch_status` on the test's clock: a sensor going offline and coming back
is announced once per change (`sensor.offline`, `sensor.online`), and the running capture
sessions of its runs get a data gap for the time it was away."""

import asyncio
from datetime import datetime

from telemetry_ingest_service.appkeys import INGEST
from tests.experiment.factories import (
    create_experiment,
    create_run_in_status,
    expect,
    start_capture,
)
from tests.experiment.job_kit import hooked, run_jobs
from tests.experiment.webhook_kit import subscribe
from tests.telemetry_ingest.ingest_api import batch, bearer, bind, create_sensor, reading


async def heard(ingest, sensor, clock) -> None:
    """A reading from the sensor now, and its heartbeat written (as the flush loop would)."""
    response = await ingest.post(
        "/api/v1/telemetry",
        json=batch(sensor, [reading(clock(), 1.0)]),
        headers=bearer(sensor["token"]),
    )
    assert response.status == 202, await response.text()
    await ingest.app[INGEST].flush_heartbeats()


async def watch(client) -> dict:
    return (await run_jobs(client))["sensors.watch_status"].result


async def test_offline_and_back_is_announced_once_each_and_marks_a_gap(
    jobs_app, ingest, mockserver_host, receiver, editor, project_id, clock
):
    client = await jobs_app(sensor_status_interval=1, **hooked(mockserver_host))
    hook = receiver()
    await subscribe(client, editor, project_id, hook.url, ["sensor.offline", "sensor.online"])
    experiment = await create_experiment(client, editor, project_id, name="tunnel")
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    sensor = await create_sensor(client, editor, project_id)
    idle = await create_sensor(client, editor, project_id)  # never heard from: never announced
    await bind(client, editor, run["id"], sensor["id"])
    session = await start_capture(client, editor, run["id"])
    path = f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}"
    clock.advance(5)
    await heard(ingest, sensor, clock)
    last_heard = clock()
    # First reachability: recorded, not announced.
    assert await watch(client) == {"offline": 0, "online": 0, "gaps_opened": 0}

    clock.advance(30)  # delayed is still reachable
    assert await watch(client) == {"offline": 0, "online": 0, "gaps_opened": 0}
    clock.advance(31)
    assert await watch(client) == {"offline": 1, "online": 0, "gaps_opened": 1}
    clock.advance(60)
    assert await watch(client) == {"offline": 0, "online": 0, "gaps_opened": 0}
    gapped = await expect(await client.get(path, headers=editor.headers), 200)
    (gap,) = gapped["gaps"]
    assert gap["sensor_id"] == sensor["id"]
    assert gap["to"] is None
    # From the last heartbeat, or the session's start if that came later (the setup's time).
    started = datetime.fromisoformat(session["started_at"])
    assert datetime.fromisoformat(gap["from"]) == max(last_heard, started)

    clock.advance(1)
    await heard(ingest, sensor, clock)
    back = clock()
    assert await watch(client) == {"offline": 0, "online": 1, "gaps_opened": 0}
    (gap,) = (await expect(await client.get(path, headers=editor.headers), 200))["gaps"]
    assert datetime.fromisoformat(gap["to"]) == back

    # The clock jumps past the deliveries' lease while they are in flight: count events by id.
    calls = await hook.wait_for_events(2)
    assert sorted(c.event_type for c in calls) == ["sensor.offline", "sensor.online"]
    for call in calls:
        assert call.json["data"]["id"] == sensor["id"]
        assert call.json["actor"] is None
    offline = next(c for c in calls if c.event_type == "sensor.offline")
    assert offline.json["data"]["status"] == "offline"
    assert idle["id"] not in {c.json["data"]["id"] for c in calls}
    await asyncio.sleep(0.3)
    assert len(hook.events) == 2, [c.event_type for c in hook.calls]


async def test_capture_started_while_a_bound_sensor_is_offline_gets_a_gap_from_its_start(
    jobs_app, ingest, editor, project_id, clock
):
    client = await jobs_app(sensor_status_interval=1)
    experiment = await create_experiment(client, editor, project_id, name="tunnel")
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    sensor = await create_sensor(client, editor, project_id)
    await bind(client, editor, run["id"], sensor["id"])
    await heard(ingest, sensor, clock)
    await watch(client)
    clock.advance(120)
    assert (await watch(client))["offline"] == 1
    session = await start_capture(client, editor, run["id"])
    clock.advance(5)
    assert (await watch(client))["gaps_opened"] == 1
    path = f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}"
    (gap,) = (await expect(await client.get(path, headers=editor.headers), 200))["gaps"]
    assert gap["from"] == session["started_at"]
    # Stopping the session ends its open gap.
    stopped = await expect(await client.post(f"{path}/stop", json={}, headers=editor.headers), 200)
    assert stopped["gaps"][0]["to"] == stopped["stopped_at"]
