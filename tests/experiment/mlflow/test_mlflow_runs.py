"""The MLflow door's mapping, as ETP's own API shows it: statuses (KILLED), deletion and
restoring, tags, search filters, orders and pages, metric histories and artifact folders."""

import asyncio
import uuid

from tests.experiment.factories import expect
from tests.experiment.mlflow.mlflow_kit import call, new_run


async def _etp_run(client, who, mlflow_run_id: str) -> dict:
    run_id = uuid.UUID(mlflow_run_id)  # MLflow's run id is the ETP run's UUID without dashes
    return await expect(await client.get(f"/api/v1/runs/{run_id}", headers=who.headers), 200)


async def test_killed_is_failed_with_the_status_kept(client, through):
    run_id = (await new_run(client, through))["info"]["run_id"]

    await call(client, through, "POST", "/runs/update", json={"run_id": run_id, "status": "KILLED"})

    etp = await _etp_run(client, through, run_id)
    assert etp["status"] == "failed"
    assert etp["metadata"]["mlflow"]["status"] == "KILLED"
    got = await call(client, through, "GET", "/runs/get", params={"run_id": run_id})
    assert got["run"]["info"]["status"] == "KILLED"
    assert got["run"]["info"]["end_time"] >= got["run"]["info"]["start_time"]


async def test_a_deleted_run_is_restorable_and_searched_by_view(client, through):
    run = await new_run(client, through)
    run_id, experiment_id = run["info"]["run_id"], run["info"]["experiment_id"]
    search = {"experiment_ids": [experiment_id]}

    await call(client, through, "POST", "/runs/delete", json={"run_id": run_id})
    active = await call(client, through, "POST", "/runs/search", json=search)
    deleted = await call(
        client, through, "POST", "/runs/search", json={**search, "run_view_type": "DELETED_ONLY"}
    )
    assert active["runs"] == []
    assert [r["info"]["lifecycle_stage"] for r in deleted["runs"]] == ["deleted"]

    await call(client, through, "POST", "/runs/restore", json={"run_id": run_id})
    active = await call(client, through, "POST", "/runs/search", json=search)
    assert [r["info"]["run_id"] for r in active["runs"]] == [run_id]
    assert "lifecycle_stage" not in (await _etp_run(client, through, run_id))["metadata"]["mlflow"]


async def test_tags_set_and_deleted_reach_etps_tags(client, through):
    run_id = (await new_run(client, through))["info"]["run_id"]

    await call(
        client,
        through,
        "POST",
        "/runs/set-tag",
        json={"run_id": run_id, "key": "team", "value": "aero"},
    )
    await call(
        client,
        through,
        "POST",
        "/runs/set-tag",
        json={"run_id": run_id, "key": "mlflow.runName", "value": "renamed"},
    )
    tagged = await _etp_run(client, through, run_id)
    await call(client, through, "POST", "/runs/delete-tag", json={"run_id": run_id, "key": "team"})
    untagged = await _etp_run(client, through, run_id)

    assert "team:aero" in tagged["tags"]
    assert tagged["name"] == "renamed"
    assert "team:aero" not in untagged["tags"]
    assert "team" not in untagged["metadata"]["mlflow"]["tags"]
    listed = await expect(
        await client.get(
            "/api/v1/runs",
            params={"project_id": tagged["project_id"], "tags": "team:aero"},
            headers=through.headers,
        ),
        200,
    )
    assert listed["items"] == []


async def test_search_filters_orders_and_pages(client, through):
    experiment = await call(client, through, "POST", "/experiments/create", json={"name": "sweep"})
    experiment_id = experiment["experiment_id"]
    ids = []
    for index, (lr, acc, status) in enumerate(
        [
            ("0.1", 0.5, "FINISHED"),
            ("0.01", 0.9, "FINISHED"),
            ("0.01", 0.7, "FAILED"),
            ("0.001", 0.8, "KILLED"),
        ]
    ):
        created = await call(
            client,
            through,
            "POST",
            "/runs/create",
            json={
                "experiment_id": experiment_id,
                "run_name": f"r{index}",
                "tags": [{"key": "sweep", "value": "lr"}],
            },
        )
        run_id = created["run"]["info"]["run_id"]
        ids.append(run_id)
        await call(
            client,
            through,
            "POST",
            "/runs/log-batch",
            json={
                "run_id": run_id,
                "params": [{"key": "lr", "value": lr}],
                "metrics": [{"key": "acc", "value": acc, "timestamp": 1764806400000, "step": 1}],
            },
        )
        await call(
            client, through, "POST", "/runs/update", json={"run_id": run_id, "status": status}
        )

    async def search(**body) -> list[str]:
        found = await call(
            client,
            through,
            "POST",
            "/runs/search",
            json={"experiment_ids": [experiment_id], **body},
        )
        return [run["info"]["run_name"] for run in found["runs"]]

    assert await search(filter="metrics.acc >= 0.7", order_by=["metrics.acc DESC"]) == [
        "r1",
        "r3",
        "r2",
    ]
    assert await search(filter="params.lr = '0.01'", order_by=["attributes.run_name ASC"]) == [
        "r1",
        "r2",
    ]
    assert await search(filter="attributes.status = 'FAILED'") == ["r2"]
    assert await search(filter="attributes.status = 'KILLED'") == ["r3"]
    assert await search(
        filter="attributes.status IN ('FAILED', 'KILLED')", order_by=["run_name"]
    ) == ["r2", "r3"]
    by_lr = await search(
        filter="tags.sweep = 'lr' and params.lr LIKE '0.0%'", order_by=["params.lr DESC"]
    )
    assert set(by_lr[:2]) == {"r1", "r2"}  # the same lr: in id order
    assert by_lr[2] == "r3"
    assert await search(filter="attributes.run_name ILIKE 'R0'") == ["r0"]
    assert await search(filter="metrics.acc > 0.95") == []

    first = await call(
        client,
        through,
        "POST",
        "/runs/search",
        json={"experiment_ids": [experiment_id], "max_results": 3, "order_by": ["metrics.acc ASC"]},
    )
    rest = await call(
        client,
        through,
        "POST",
        "/runs/search",
        json={
            "experiment_ids": [experiment_id],
            "max_results": 3,
            "order_by": ["metrics.acc ASC"],
            "page_token": first["next_page_token"],
        },
    )
    assert [r["info"]["run_name"] for r in first["runs"] + rest["runs"]] == ["r0", "r2", "r3", "r1"]
    assert "next_page_token" not in rest


async def test_metric_history_pages_and_the_bulk_interval(client, through):
    run_id = (await new_run(client, through))["info"]["run_id"]
    other_id = (await new_run(client, through, "other"))["info"]["run_id"]
    for target in (run_id, other_id):
        points = [
            {"key": "loss", "value": step / 10, "timestamp": 1764806400000 + step, "step": step}
            for step in range(30)
        ]
        await call(
            client, through, "POST", "/runs/log-batch", json={"run_id": target, "metrics": points}
        )

    first = await call(
        client,
        through,
        "GET",
        "/metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss", "max_results": 20},
    )
    rest = await call(
        client,
        through,
        "GET",
        "/metrics/get-history",
        params={
            "run_id": run_id,
            "metric_key": "loss",
            "max_results": 20,
            "page_token": first["next_page_token"],
        },
    )
    never = await call(
        client,
        through,
        "GET",
        "/metrics/get-history",
        params={"run_id": run_id, "metric_key": "none"},
    )
    bulk = await call(
        client,
        through,
        "GET",
        "/metrics/get-history-bulk-interval",
        params=[
            ("run_ids", run_id),
            ("run_ids", other_id),
            ("metric_key", "loss"),
            ("start_step", "5"),
            ("end_step", "9"),
        ],
    )

    assert [p["step"] for p in first["metrics"] + rest["metrics"]] == list(range(30))
    assert first["metrics"][3] == {
        "key": "loss",
        "value": 0.3,
        "timestamp": 1764806400003,
        "step": 3,
    }
    assert never == {"metrics": []}
    assert [(p["run_id"], p["step"]) for p in bulk["metrics"]] == [
        (r, step) for r in (run_id, other_id) for step in range(5, 10)
    ]


async def test_artifact_folders_list_like_mlflows_server(client, through):
    run = await new_run(client, through)
    root = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    for path, content in (
        ("a.txt", b"1"),
        ("plots/loss.png", b"22"),
        ("plots/deep/x.bin", b"333"),
        ("a.txt", b"4444"),
    ):
        response = await client.put(
            f"/api/2.0/mlflow-artifacts/artifacts/{root}/{path}",
            data=content,
            headers=through.headers,
        )
        assert response.status == 200, await response.text()

    listed = await (
        await client.get(
            "/api/2.0/mlflow-artifacts/artifacts", params={"path": root}, headers=through.headers
        )
    ).json()
    plots = await (
        await client.get(
            "/api/2.0/mlflow-artifacts/artifacts",
            params={"path": f"{root}/plots"},
            headers=through.headers,
        )
    ).json()
    newest = await client.get(
        f"/api/2.0/mlflow-artifacts/artifacts/{root}/a.txt", headers=through.headers
    )

    assert listed == {
        "files": [
            {"path": "a.txt", "is_dir": False, "file_size": 4},
            {"path": "plots", "is_dir": True},
        ]
    }
    assert plots == {
        "files": [
            {"path": "deep", "is_dir": True},
            {"path": "loss.png", "is_dir": False, "file_size": 2},
        ]
    }
    assert await newest.read() == b"4444"


async def test_searching_the_default_experiment_before_it_exists_finds_nothing(client, through):
    found = await call(client, through, "POST", "/runs/search", json={"experiment_ids": ["0"]})
    assert found.get("runs", []) == []
    await call(client, through, "POST", "/runs/create", json={"run_name": "first"})
    found = await call(client, through, "POST", "/runs/search", json={"experiment_ids": ["0"]})
    assert [run["info"]["run_name"] for run in found["runs"]] == ["first"]


async def test_runs_without_an_experiment_go_to_the_default_one(client, through):
    created = await call(client, through, "POST", "/runs/create", json={"run_name": "loose"})
    again = await call(client, through, "POST", "/runs/create", json={"experiment_id": "0"})

    experiment = await call(
        client, through, "GET", "/experiments/get", params={"experiment_id": "0"}
    )
    assert experiment["experiment"]["name"] == "Default"
    assert created["run"]["info"]["experiment_id"] == experiment["experiment"]["experiment_id"]
    assert again["run"]["info"]["experiment_id"] == experiment["experiment"]["experiment_id"]
    assert again["run"]["info"]["run_name"].startswith("run-")


async def test_params_logged_at_once_are_all_kept(client, through):
    run_id = (await new_run(client, through))["info"]["run_id"]

    await asyncio.gather(
        *(
            call(
                client,
                through,
                "POST",
                "/runs/log-parameter",
                json={"run_id": run_id, "key": f"p{i}", "value": str(i)},
            )
            for i in range(10)
        )
    )

    etp = await _etp_run(client, through, run_id)
    assert etp["params"] == {f"p{i}": str(i) for i in range(10)}
