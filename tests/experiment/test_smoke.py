import uuid


async def test_experiment_run_capture_smoke(service_app_client, auth_stub):
    client = await service_app_client("experiment")
    project_id = uuid.uuid4()
    editor = auth_stub.member(project_id, "editor")

    created = await client.post(
        "/api/v1/experiments",
        json={"project_id": str(project_id), "name": "Wind tunnel", "tags": ["aero"]},
        headers=editor.headers,
    )
    assert created.status == 201, await created.text()
    experiment = await created.json()
    run = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs",
        json={"name": "run 1", "params": {"lr": 0.1}, "git_sha": "abcdef1"},
        headers=editor.headers,
    )
    assert run.status == 201, await run.text()
    run_id = (await run.json())["id"]
    started = await client.patch(
        f"/api/v1/runs/{run_id}", json={"status": "running"}, headers=editor.headers
    )
    assert started.status == 200, await started.text()
    capture = await client.post(
        f"/api/v1/runs/{run_id}/capture-sessions", json={}, headers=editor.headers
    )
    assert capture.status == 201, await capture.text()
    finish = await client.patch(
        f"/api/v1/runs/{run_id}", json={"status": "succeeded"}, headers=editor.headers
    )
    assert finish.status == 409
    assert (await finish.json())["code"] == "run_has_active_capture"
    listed = await client.get(
        "/api/v1/runs",
        params={"project_id": str(project_id), "tags": "aero"},
        headers=editor.headers,
    )
    assert listed.status == 200, await listed.text()
    events = await client.get(f"/api/v1/runs/{run_id}/events", headers=editor.headers)
    assert [e["action"] for e in (await events.json())["items"]] == [
        "run.created",
        "run.status_changed",
        "capture_session.started",
    ]
    export = await client.get(
        "/api/v1/runs/export",
        params={"project_id": str(project_id), "format": "csv"},
        headers=editor.headers,
    )
    assert export.status == 200, await export.text()
    assert (await export.text()).startswith("id,experiment_id")
