"""`etp demo --quick` against the real stack: the project it populates, read back through the
API with the key it prints, and the people it signs up signing in with the passwords it prints
(at the auth process: the gateway's sign-in allowance per address is the session's to share)."""

import itertools
from datetime import datetime
from typing import Any

import pytest

from etp.demo import DemoOptions
from tests.cli.conftest import expect

pytestmark = pytest.mark.e2e

QUICK = DemoOptions.quick()


async def read(daemons, key: str, path: str, **query: str) -> Any:
    answer = await daemons["gateway"].get(
        path, params=query or None, headers={"Authorization": f"Bearer {key}"}
    )
    return await expect(answer, 200)


async def test_demo_populates_a_project_streams_into_a_capture_and_runs_again(etp, daemons):
    result = await etp("demo", "--quick", "--live-for", "2s", "--json", within=90)

    assert result.code == 0, result
    demo = result.json
    key, project_id = demo["api_key"], demo["project"]["id"]
    members = await read(daemons, key, f"/api/v1/projects/{project_id}/members")
    roles = {m["username"]: m["role"] for m in members["items"]}
    assert roles == {p["username"]: p["role"] for p in demo["people"]}
    assert sorted(roles.values()) == ["editor", "owner", "viewer"]
    for person in demo["people"]:
        login = {"username": person["username"], "password": person["password"]}
        await expect(await daemons["auth"].post("/api/v1/auth/login", json=login), 200)

    experiments = await read(daemons, key, "/api/v1/experiments", project_id=project_id)
    assert len(experiments["items"]) == 2
    runs = (await read(daemons, key, "/api/v1/runs", project_id=project_id))["items"]
    assert sorted(r["status"] for r in runs) == ["failed"] + ["succeeded"] * 5  # live one too
    assert all(r["params"] for r in runs)
    for run in (r for r in runs if r["id"] != demo["live_run_id"]):
        metrics = await read(daemons, key, f"/api/v1/runs/{run['id']}/metrics")
        assert [m["count"] for m in metrics["items"]] == [QUICK.metric_steps] * 2

    sensors = (await read(daemons, key, "/api/v1/sensors", project_id=project_id))["items"]
    assert len(sensors) == 3
    assert all(s["active_profile_id"] for s in sensors)

    sessions = []
    for run in runs:
        page = await read(daemons, key, f"/api/v1/runs/{run['id']}/capture-sessions")
        sessions += page["items"]
    assert [s["status"] for s in sessions] == ["succeeded"] * 3
    recorded = {s["id"]: s for s in demo["capture_sessions"]}
    named = {s["name"]: s["id"] for s in sensors}
    for session in sessions:
        page = await read(
            daemons, key, "/api/v1/telemetry", capture_session_id=session["id"], limit="10000"
        )
        readings = page["items"]
        assert {r["sensor_id"] for r in readings} == {s["id"] for s in sensors}
        if session["run_id"] == demo["live_run_id"]:  # streamed live, converted
            assert all(r["conversion_status"] == "ok" for r in readings)
            continue
        assert len(readings) == recorded[session["id"]]["readings"]
        late = sum(r["late"] for r in readings)
        assert late == recorded[session["id"]]["late"]
        times = [
            datetime.fromisoformat(r["timestamp"]).timestamp()
            for r in readings
            if r["sensor_id"] == named["inlet-thermocouple"]
        ]
        longest = max(b - a for a, b in itertools.pairwise(times))
        if late:  # session 2: the pressure batches of its last quarter came after the stop
            assert {r["sensor_id"] for r in readings if r["late"]} == {named["pitot-pressure"]}
        else:  # session 1: the thermocouple dropped out for a sixth of the session
            assert longest >= QUICK.recorded_seconds / 6
    assert sum(s["late"] for s in demo["capture_sessions"]) > 0

    # Run again: a project and people of its own, the first one untouched.
    again = await etp("demo", "--quick", "--live-for", "0", "--json", within=90)
    assert again.code == 0, again
    assert again.json["project"]["id"] != project_id
    assert {p["username"] for p in again.json["people"]}.isdisjoint(roles)
    members = await read(daemons, key, f"/api/v1/projects/{project_id}/members")
    assert len(members["items"]) == 3
