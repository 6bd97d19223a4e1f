"""MLflow's own client logging into ETP through the MLflow door, every value checked through
ETP's own API afterwards."""

import math
import uuid
from pathlib import Path

from tests.experiment.artifact_kit import event_rows
from tests.experiment.factories import expect

GIT_SHA = "0123456789abcdef0123456789abcdef01234567"
# A public address the webhook target guard takes without a DNS lookup; nothing is sent there.
WEBHOOK_TARGET = "https://93.184.216.34/mlflow-door"


async def test_a_training_script_logs_into_etp_unchanged(
    client, pgsql, mlflow_client, alice, through, project, tmp_path: Path
):
    model = tmp_path / "model.txt"
    model.write_text("weights")
    # A subscriber, so that the run's events are queued (no dispatcher runs in these tests).
    subscription = {"project_id": project, "target_url": WEBHOOK_TARGET, "event_types": ["*"]}
    await expect(
        await client.post("/api/v1/webhooks", json=subscription, headers=alice.headers), 201
    )

    def training() -> dict:
        import mlflow
        from mlflow import MlflowClient

        experiment = mlflow.set_experiment("wind tunnel")
        run = mlflow.start_run(run_name="baseline")
        mlflow.log_params({"lr": "0.01", "layers": 4})
        for step in range(1000):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.93, "bad": float("nan")}, step=7)
        mlflow.set_tags(
            {"team": "aero", "note": "not an ETP tag", "mlflow.source.git.commit": GIT_SHA}
        )
        mlflow.log_artifact(str(model), artifact_path="models")
        mlflow.end_run(status="FAILED")

        tracking = MlflowClient()
        found = tracking.search_runs(
            [experiment.experiment_id],
            filter_string="metrics.acc > 0.5 and params.lr = '0.01' and tags.team = 'aero'",
            order_by=["metrics.acc DESC"],
        )
        missed = tracking.search_runs(
            [experiment.experiment_id], filter_string="metrics.acc > 0.95"
        )
        history = tracking.get_metric_history(run.info.run_id, "loss")
        fetched = tracking.get_run(run.info.run_id)
        downloaded = tracking.download_artifacts(run.info.run_id, "models/model.txt", str(tmp_path))
        listed = tracking.list_artifacts(run.info.run_id, "models")
        return {
            "experiment_id": experiment.experiment_id,
            "run_id": run.info.run_id,
            "found": [r.info.run_id for r in found],
            "missed": missed,
            "history": [(m.step, m.value) for m in history],
            "fetched": fetched,
            "downloaded": Path(downloaded).read_text(),
            "listed": [(f.path, f.is_dir, f.file_size) for f in listed],
        }

    seen = await mlflow_client(training)

    run_id = uuid.UUID(seen["run_id"])
    assert seen["run_id"] == run_id.hex
    assert seen["found"] == [seen["run_id"]]
    assert seen["missed"] == []
    assert seen["history"] == [(step, 1 / (step + 1)) for step in range(1000)]
    assert seen["downloaded"] == "weights"
    assert seen["listed"] == [("models/model.txt", False, 7)]
    fetched = seen["fetched"]
    assert fetched.info.status == "FAILED"
    assert fetched.data.params == {"lr": "0.01", "layers": "4"}
    assert fetched.data.metrics["acc"] == 0.93
    assert math.isnan(fetched.data.metrics["bad"])
    assert fetched.data.tags["team"] == "aero"

    # ETP's own API shows the same run, an ordinary ETP object.
    run = await expect(await client.get(f"/api/v1/runs/{run_id}", headers=through.headers), 200)
    assert run["name"] == "baseline"
    assert run["status"] == "failed"
    assert run["experiment_id"] == str(uuid.UUID(seen["experiment_id"]))
    assert run["project_id"] == project
    assert run["params"] == {"lr": "0.01", "layers": "4"}
    assert run["git_sha"] == GIT_SHA
    assert "team:aero" in run["tags"]
    # Not valid ETP tags (a space; longer than 64): in the metadata only.
    assert not any(tag.startswith(("note:", "mlflow.source.git.commit:")) for tag in run["tags"])
    mlflow_tags = run["metadata"]["mlflow"]["tags"]
    assert mlflow_tags["team"] == "aero"
    assert mlflow_tags["note"] == "not an ETP tag"
    assert mlflow_tags["mlflow.source.git.commit"] == GIT_SHA
    experiment = await expect(
        await client.get(f"/api/v1/experiments/{run['experiment_id']}", headers=through.headers),
        200,
    )
    assert experiment["name"] == "wind tunnel"

    metrics = await expect(
        await client.get(f"/api/v1/runs/{run_id}/metrics", headers=through.headers), 200
    )
    by_name = {m["name"]: m for m in metrics["items"]}
    assert by_name["loss"]["count"] == 1000
    assert by_name["loss"]["last"] == 1 / 1000
    assert by_name["loss"]["last_step"] == 999
    assert by_name["acc"]["last"] == 0.93
    assert by_name["bad"]["last"] == "NaN"
    series = await expect(
        await client.get(
            f"/api/v1/runs/{run_id}/metrics/loss", params={"limit": 500}, headers=through.headers
        ),
        200,
    )
    assert [p["value"] for p in series["items"]] == [1 / (step + 1) for step in range(500)]

    artifacts = await expect(
        await client.get(f"/api/v1/runs/{run_id}/artifacts", headers=through.headers), 200
    )
    [artifact] = artifacts["items"]
    assert artifact["name"] == "models/model.txt"
    content = await client.get(
        f"/api/v1/artifacts/{artifact['id']}/content", headers=through.headers
    )
    assert await content.read() == b"weights"

    audit = await expect(
        await client.get("/api/v1/audit", params={"project_id": project}, headers=through.headers),
        200,
    )
    actions = {entry["action"] for entry in audit["items"]}
    assert {
        "experiment.created",
        "run.created",
        "run.status_changed",
        "artifact.created",
    } <= actions
    # and the webhooks' outbox announced it.
    for event_type, status in (("run.started", "running"), ("run.finished", "failed")):
        [event] = [
            e for e in event_rows(pgsql, event_type) if e["payload"]["data"]["id"] == str(run_id)
        ]
        assert event["payload"]["data"]["status"] == status


async def test_a_script_that_sets_no_experiment_logs_into_the_default_one(
    client, mlflow_client, through
):
    def training() -> tuple[str, str]:
        import mlflow

        with mlflow.start_run() as run:
            mlflow.log_metric("loss", 0.5)
        return run.info.run_id, run.info.experiment_id

    run_id, experiment_id = await mlflow_client(training)

    run = await expect(
        await client.get(f"/api/v1/runs/{uuid.UUID(run_id)}", headers=through.headers), 200
    )
    experiment = await expect(
        await client.get(f"/api/v1/experiments/{run['experiment_id']}", headers=through.headers),
        200,
    )
    assert run["status"] == "succeeded"
    assert experiment["name"] == "Default"
    assert uuid.UUID(experiment_id) == uuid.UUID(experiment["id"])
