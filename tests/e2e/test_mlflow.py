"""MLflow's own client pointed at the real gateway (MLFLOW_TRACKING_URI) with an ETP API key
(MLFLOW_TRACKING_TOKEN): an unchanged training script logs into ETP."""

import asyncio
import uuid

from tests.e2e.test_auth_across_services import sign_up


async def test_mlflow_client_logs_through_the_gateway(daemons, daemon_ports, monkeypatch, tmp_path):
    owner = await sign_up(daemons["auth"])
    project = await daemons["auth"].post("/api/v1/projects", json={"name": "ML"}, headers=owner)
    project_id = project.json()["id"]
    created = await daemons["auth"].post(
        "/api/v1/api-keys", json={"name": "training", "project_id": project_id}, headers=owner
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{daemon_ports['gateway']}")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", created.json()["key"])
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    notes = tmp_path / "notes.txt"
    notes.write_text("through the gateway")

    def training() -> str:
        import mlflow

        mlflow.set_experiment("gateway")
        with mlflow.start_run(run_name="e2e") as run:
            mlflow.log_param("lr", 0.1)
            for step in range(3):
                mlflow.log_metric("loss", 1 / (step + 1), step=step)
            mlflow.log_artifact(str(notes))
        return run.info.run_id

    run_id = uuid.UUID(await asyncio.to_thread(training))

    key = {"Authorization": f"Bearer {created.json()['key']}"}
    run = await daemons["experiment"].get(f"/api/v1/runs/{run_id}", headers=key)
    assert run.status == 200, run.text
    assert run.json()["status"] == "succeeded"
    assert run.json()["params"] == {"lr": "0.1"}
    metrics = await daemons["experiment"].get(f"/api/v1/runs/{run_id}/metrics", headers=key)
    assert [(m["name"], m["count"], m["last"]) for m in metrics.json()["items"]] == [
        ("loss", 3, 1 / 3)
    ]
    artifacts = await daemons["experiment"].get(f"/api/v1/runs/{run_id}/artifacts", headers=key)
    assert [a["name"] for a in artifacts.json()["items"]] == ["notes.txt"]
