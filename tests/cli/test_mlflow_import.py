"""`etp import mlflow` against the real stack: runs written by MLflow's own client into a local
`mlruns` folder (its file store), imported, and compared field by field through ETP's API; a
second import changes nothing; an import that crashes part-way resumes without duplicates."""

import asyncio
import hashlib
import math
import os
import random
import signal
import socket
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from etp.client import Client
from etp.mlflow_import.importer import MlflowImport
from etp.mlflow_import.source import MlflowSource
from tests.cli.conftest import ETP, expect
from tests.plugins.waiting import eventually

pytestmark = pytest.mark.e2e
mlflow = pytest.importorskip("mlflow")

from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

SHA = "0123456789abcdef0123456789abcdef01234567"
T0 = 1_767_225_600_000  # 2026-01-01, ms


@dataclass
class Written:
    """What the test wrote into MLflow, to compare the import with."""

    folder: Path
    experiments: dict[str, str] = field(default_factory=dict)  # name -> MLflow id
    runs: dict[str, str] = field(default_factory=dict)  # label -> MLflow run id


def _history(name: str, count: int, *, special: bool = False) -> list[Metric]:
    points = [Metric(name, 1.0 / (i + 1), T0 + i * 10, i) for i in range(count)]
    if special:
        points += [
            Metric(name, math.nan, T0 + 90_000, count),
            Metric(name, math.inf, T0 + 90_001, count + 1),
            Metric(name, -math.inf, T0 + 90_002, count + 2),
            Metric(name, 0.5, T0 + 90_003, 3),  # the same step logged twice
        ]
    return points


def _log(client: MlflowClient, run_id: str, metrics: list[Metric]) -> None:
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


@pytest.fixture
def mlruns(tmp_path, monkeypatch) -> Written:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    folder = tmp_path / "mlruns"
    folder.mkdir()
    client = MlflowClient(tracking_uri=folder.as_uri())
    written = Written(folder)
    a = client.create_experiment("wing-a", tags={"owner": "aero", "note": "with spaces"})
    b = client.create_experiment("wing-b")
    written.experiments = {"wing-a": a, "wing-b": b}

    tags = {
        "team": "vision",
        "note": "has spaces, not an ETP tag",
        "long": "x" * 100,
        "mlflow.source.git.commit": SHA,
        "mlflow.user": "ada",
    }
    run = client.create_run(a, start_time=T0, run_name="baseline", tags=tags)
    client.log_batch(
        run.info.run_id,
        params=[Param("lr", "0.001"), Param("optimizer", "adam"), Param("layers", "[64, 64]")],
    )
    _log(client, run.info.run_id, _history("loss", 25, special=True) + _history("acc", 3))
    files = tmp_path / "files"
    (files / "plots" / "deep").mkdir(parents=True)
    (files / "plots" / "deep" / "curve.csv").write_text("step,loss\n0,1\n1,0.5\n")
    (files / "plots" / "summary.txt").write_text("fine\n")
    (files / "weights.bin").write_bytes(random.Random(7).randbytes(150_000))
    client.log_artifacts(run.info.run_id, str(files / "plots"), "plots")
    client.log_artifact(run.info.run_id, str(files / "weights.bin"), "model")
    client.set_terminated(run.info.run_id, "FINISHED", end_time=T0 + 60_000)
    written.runs["finished"] = run.info.run_id

    for label, status in (("failed", "FAILED"), ("killed", "KILLED")):
        run = client.create_run(a, start_time=T0 + 1000, run_name=label)
        _log(client, run.info.run_id, _history("loss", 5))
        client.set_terminated(run.info.run_id, status, end_time=T0 + 2000)
        written.runs[label] = run.info.run_id
    run = client.create_run(a, start_time=T0 + 3000, run_name="still going")
    _log(client, run.info.run_id, _history("loss", 4))
    written.runs["running"] = run.info.run_id
    run = client.create_run(a, start_time=T0 + 4000, run_name="queued")
    client.update_run(run.info.run_id, status="SCHEDULED")
    written.runs["scheduled"] = run.info.run_id

    run = client.create_run(b, start_time=T0 + 5000, run_name="long")
    _log(client, run.info.run_id, _history("train/loss", 2500) + _history("lr", 10))
    client.log_artifact(run.info.run_id, str(files / "plots" / "summary.txt"))
    client.set_terminated(run.info.run_id, "FINISHED", end_time=T0 + 9000)
    written.runs["long"] = run.info.run_id
    return written


async def _get(daemons, account, path: str, **params: Any) -> Any:
    response = await daemons["gateway"].get(path, params=params, headers=account.headers)
    return await expect(response, 200)


async def _pages(daemons, account, path: str, **params: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        query = {"limit": "500", **params, **({"cursor": cursor} if cursor else {})}
        page = await _get(daemons, account, path, **query)
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


async def _experiments(daemons, account) -> dict[str, dict[str, Any]]:
    listed = await _pages(daemons, account, "/api/v1/experiments", project_id=account.project_id)
    return {item["name"]: item for item in listed}


async def _imported(daemons, account) -> dict[str, dict[str, Any]]:
    """Every run of the project, by the MLflow run id it came from."""
    runs = await _pages(daemons, account, "/api/v1/runs", project_id=account.project_id)
    return {run["metadata"]["mlflow"]["source"]["run_id"]: run for run in runs}


def _value(value: Any) -> float:
    return float(value) if isinstance(value, str) else value


async def _points(daemons, account, run_id: str, name: str) -> list[tuple[int, Any, int]]:
    items = await _pages(daemons, account, f"/api/v1/runs/{run_id}/metrics/{name}")
    return [
        (p["step"], p["value"], int(datetime.fromisoformat(p["timestamp"]).timestamp() * 1000))
        for p in items
    ]


def _expected_points(client: MlflowClient, run_id: str, name: str) -> list[tuple[int, Any, int]]:
    history = sorted(
        client.get_metric_history(run_id, name), key=lambda m: (m.step, m.timestamp, repr(m.value))
    )

    def wire(value: float) -> Any:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value

    return [(m.step, wire(m.value), m.timestamp) for m in history]


def _files(root: Path) -> list[tuple[str, int, str]]:
    """Every file under `root`: its relative path, size and sha256."""
    out = []
    for file in root.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            out.append((str(file.relative_to(root)), len(data), hashlib.sha256(data).hexdigest()))
    return sorted(out)


async def _check_copy(daemons, account, mlruns: Written) -> dict[str, dict[str, Any]]:
    """Compares every imported run with its MLflow run, field by field."""
    source = MlflowClient(tracking_uri=mlruns.folder.as_uri())
    runs = await _imported(daemons, account)
    assert set(runs) == set(mlruns.runs.values())
    experiments = await _experiments(daemons, account)
    statuses = {
        "FINISHED": "succeeded",
        "FAILED": "failed",
        "KILLED": "failed",
        "RUNNING": "running",
        "SCHEDULED": "draft",
    }
    for label, mlflow_id in mlruns.runs.items():
        original = source.get_run(mlflow_id)
        run = runs[mlflow_id]
        experiment_name = source.get_experiment(original.info.experiment_id).name
        assert run["experiment_id"] == experiments[experiment_name]["id"], label
        assert run["name"] == original.info.run_name, label
        assert run["params"] == original.data.params, label
        assert run["status"] == statuses[original.info.status], label
        stored = run["metadata"]["mlflow"]
        assert stored["source"] == {
            "tracking_uri": mlruns.folder.resolve().as_uri(),
            "run_id": mlflow_id,
            "experiment_id": original.info.experiment_id,
        }
        assert stored["tags"] == original.data.tags, label
        assert stored["start_time"] == original.info.start_time, label
        assert stored.get("end_time") == original.info.end_time, label
        killed = original.info.status == "KILLED"
        assert stored.get("status") == ("KILLED" if killed else None), label
        valid = sorted(
            tag
            for k, v in original.data.tags.items()
            if len(tag := f"{k}:{v}") <= 64 and " " not in tag
        )
        assert sorted(run["tags"]) == valid, label
        summaries = await _pages(daemons, account, f"/api/v1/runs/{run['id']}/metrics")
        assert sorted(s["name"] for s in summaries) == sorted(original.data.metrics), label
        for name in original.data.metrics:
            got = await _points(daemons, account, run["id"], name)
            assert got == _expected_points(source, mlflow_id, name), (label, name)
        artifacts = await _pages(daemons, account, f"/api/v1/runs/{run['id']}/artifacts")
        root = Path(original.info.artifact_uri.removeprefix("file://"))
        got = sorted((a["name"], a["size"], a["sha256"]) for a in artifacts)
        assert got == _files(root), label
        assert all(a["metadata"] == {"mlflow": {"path": a["name"]}} for a in artifacts), label
    finished = runs[mlruns.runs["finished"]]
    assert finished["git_sha"] == SHA
    assert "team:vision" in finished["tags"]
    assert "mlflow.user:ada" in finished["tags"]
    assert not any(tag.startswith(("note:", "long:")) for tag in finished["tags"])
    names = await _pages(daemons, account, f"/api/v1/runs/{finished['id']}/artifacts")
    assert sorted(a["name"] for a in names) == [
        "model/weights.bin",
        "plots/deep/curve.csv",
        "plots/summary.txt",
    ]
    assert experiments["wing-a"]["metadata"]["mlflow"]["tags"] == {
        "owner": "aero",
        "note": "with spaces",
    }
    return runs


async def test_import_copies_every_field_and_a_second_import_changes_nothing(
    etp, account, daemons, mlruns
):
    gateway = daemons["gateway"]
    existing = await expect(
        await gateway.post(
            "/api/v1/experiments",
            json={"project_id": account.project_id, "name": "wing-b", "metadata": {"kept": 1}},
            headers=account.headers,
        ),
        201,
    )

    first = await etp(
        "import", "mlflow", "--from", str(mlruns.folder), "--project", "Wind tunnel",
        "--batch-points", "1000", "--json",
    )  # fmt: skip

    assert first.code == 0, first
    summary = first.json
    assert summary["experiments_created"] == 1
    assert summary["experiments_reused"] == 1
    assert (summary["runs_seen"], summary["runs_created"], summary["runs_failed"]) == (6, 6, 0)
    # 29 + 3 + 5 + 5 + 4 points in wing-a; 2,500 + 10 in wing-b (in 3 requests of ≤ 1,000).
    assert summary["metric_points"] == 46 + 2510
    assert summary["artifacts_uploaded"] == 4
    runs = await _check_copy(daemons, account, mlruns)
    experiments = await _experiments(daemons, account)
    assert experiments["wing-b"]["id"] == existing["id"]
    assert experiments["wing-b"]["metadata"] == {"kept": 1}  # no MLflow tags to add

    again = await etp(
        "import", "mlflow", "--from", mlruns.folder.as_uri(), "--project", account.project_id,
        "--json",
    )  # fmt: skip

    assert again.code == 0, again
    assert again.json | {"source": None} == {
        "source": None,
        "project_id": account.project_id,
        "dry_run": False,
        "experiments_created": 0,
        "experiments_reused": 2,
        "runs_seen": 6,
        "runs_created": 0,
        "runs_updated": 0,
        "runs_unchanged": 6,
        "runs_failed": 0,
        "metric_points": 0,
        "metric_batches": 0,
        "artifacts_uploaded": 0,
        "artifacts_skipped": 0,  # finished runs are complete: only their fields are compared
        "artifact_bytes": 0,
        "failures": [],
    }
    after = await _imported(daemons, account)
    assert {k: r["updated_at"] for k, r in after.items()} == {
        k: r["updated_at"] for k, r in runs.items()
    }
    await _check_copy(daemons, account, mlruns)  # no point or artifact twice


async def test_new_points_of_a_run_still_logging_are_copied_by_the_next_import(
    etp, account, daemons, mlruns
):
    first = await etp("import", "mlflow", "--from", str(mlruns.folder), "-p", account.project_id)
    assert first.code == 0, first
    client = MlflowClient(tracking_uri=mlruns.folder.as_uri())
    running = mlruns.runs["running"]
    _log(client, running, [Metric("loss", 0.01 * i, T0 + 50_000 + i, 4 + i) for i in range(6)])
    client.set_tag(running, "phase", "two")
    client.set_terminated(running, "FINISHED", end_time=T0 + 99_000)

    second = await etp(
        "import", "mlflow", "--from", str(mlruns.folder), "-p", account.project_id, "--json"
    )

    assert second.code == 0, second
    assert (second.json["runs_updated"], second.json["runs_unchanged"]) == (1, 5)
    assert second.json["metric_points"] == 6
    runs = await _check_copy(daemons, account, mlruns)
    assert runs[running]["status"] == "succeeded"
    assert "phase:two" in runs[running]["tags"]


async def test_an_experiment_renamed_in_mlflow_gets_no_second_copy(etp, account, daemons, mlruns):
    args = ("import", "mlflow", "--from", str(mlruns.folder), "-p", account.project_id, "--json")
    first = await etp(*args)
    assert first.code == 0, first
    client = MlflowClient(tracking_uri=mlruns.folder.as_uri())
    client.rename_experiment(mlruns.experiments["wing-b"], "wing-b renamed")

    again = await etp(*args)

    assert again.code == 0, again
    assert (again.json["experiments_created"], again.json["runs_created"]) == (0, 0)
    assert again.json["runs_unchanged"] == len(mlruns.runs)
    assert set(await _experiments(daemons, account)) == {"wing-a", "wing-b"}


async def test_what_people_changed_in_etp_survives_the_next_import(etp, account, daemons, mlruns):
    args = ("import", "mlflow", "--from", str(mlruns.folder), "-p", account.project_id, "-e")
    first = await etp(*args, "wing-b")
    assert first.code == 0, first
    run = (await _imported(daemons, account))[mlruns.runs["long"]]
    edits = {
        "name": "renamed in ETP",
        "params": {**run["params"], "reviewer": "ada"},
        "tags": [*run["tags"], "reviewed"],
        "metadata": {**run["metadata"], "note": "checked"},
    }
    edited = await expect(
        await daemons["gateway"].patch(
            f"/api/v1/runs/{run['id']}", json=edits, headers=account.headers
        ),
        200,
    )

    again = await etp(*args, "wing-b", "--json")

    assert again.code == 0, again
    assert again.json["runs_unchanged"] == 1
    after = (await _imported(daemons, account))[mlruns.runs["long"]]
    assert after == edited


async def test_ctrl_c_stops_an_import_and_the_same_command_finishes_it(
    etp, account, daemons, mlruns, gateway_url, tmp_path
):
    args = ("import", "mlflow", "--from", str(mlruns.folder), "-p", account.project_id)
    process = await asyncio.create_subprocess_exec(
        ETP, *args, "-e", "wing-b", "--batch-points", "10",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ETP_URL": gateway_url, "ETP_API_KEY": account.key,
             "ETP_CONFIG": str(tmp_path / "none.json")},
    )  # fmt: skip
    long_run = mlruns.runs["long"]

    async def points_arriving() -> int:
        run = (await _imported(daemons, account)).get(long_run)
        if run is None:
            return 0
        summaries = await _pages(daemons, account, f"/api/v1/runs/{run['id']}/metrics")
        return sum(s["count"] for s in summaries)

    try:
        await eventually(points_arriving, within=60, interval=0.05, what="the first points")
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130, err.decode()
    assert 0 < await points_arriving() < 2510  # stopped in the middle of the run's 251 batches

    resumed = await etp(*args, "--json")

    assert resumed.code == 0, resumed
    assert resumed.json["runs_created"] == len(mlruns.runs) - 1
    await _check_copy(daemons, account, mlruns)


async def test_a_run_the_service_refuses_is_reported_and_the_others_are_imported(
    etp, account, daemons, mlruns
):
    gateway = daemons["gateway"]
    archived = await expect(
        await gateway.post(
            "/api/v1/experiments",
            json={"project_id": account.project_id, "name": "wing-b"},
            headers=account.headers,
        ),
        201,
    )
    await expect(
        await gateway.patch(
            f"/api/v1/experiments/{archived['id']}",
            json={"status": "archived"},
            headers=account.headers,
        ),
        200,
    )

    done = await etp(
        "import", "mlflow", "--from", str(mlruns.folder), "-p", account.project_id, "--json"
    )

    assert done.code == 1, done
    assert (done.json["runs_created"], done.json["runs_failed"]) == (5, 1)
    [failure] = done.json["failures"]
    assert failure["run_id"] == mlruns.runs["long"]
    assert failure["experiment"] == "wing-b"
    assert (failure["error"]["status"], failure["error"]["code"]) == (409, "experiment_archived")
    assert set(await _imported(daemons, account)) == set(mlruns.runs.values()) - {
        mlruns.runs["long"]
    }


class Crash(Exception):
    pass


class CrashingClient(Client):
    """Fails like a killed process: after `after` successful writes matching `path_part`."""

    def __init__(self, *args: Any, path_part: str, after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path_part, self.left = path_part, after

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method != "GET" and self.path_part in path:
            if self.left == 0:
                raise Crash(f"{method} {path}")
            self.left -= 1
        return super().request(method, path, **kwargs)


def _import(client: Client, folder: Path, project: str, **options: Any):
    return MlflowImport(client, MlflowSource(str(folder)), project, **options).run()


@pytest.mark.parametrize(
    ("path_part", "after"),
    [
        ("/metrics", 1),  # in the middle of the long run's metrics (after 1 of 3 requests)
        ("/artifacts", 2),  # the first run: its metrics stored, one artifact of three
        ("/runs/", 9),  # some runs finished, one created and not yet started
    ],
)
async def test_an_interrupted_import_resumes_without_copying_anything_twice(
    account, daemons, mlruns, gateway_url, path_part, after
):
    order = ["long"] if path_part == "/metrics" else None
    options = {"batch_points": 1000, "experiments": ["wing-b"] if order else None}
    crashing = CrashingClient(gateway_url, account.key, path_part=path_part, after=after)
    with crashing, pytest.raises(Crash):
        await asyncio.to_thread(_import, crashing, mlruns.folder, account.project_id, **options)
    partial = await _imported(daemons, account)
    assert 0 < len(partial) < len(mlruns.runs)

    with Client(gateway_url, account.key) as client:
        summary = await asyncio.to_thread(_import, client, mlruns.folder, account.project_id)

    assert summary.runs_failed == 0
    assert summary.runs_created == len(mlruns.runs) - len(partial)
    await _check_copy(daemons, account, mlruns)
    long_run = (await _imported(daemons, account))[mlruns.runs["long"]]
    summaries = await _pages(daemons, account, f"/api/v1/runs/{long_run['id']}/metrics")
    assert {s["name"]: s["count"] for s in summaries} == {"train/loss": 2500, "lr": 10}


async def test_dry_run_counts_and_writes_nothing(etp, account, daemons, mlruns):
    dry = await etp(
        "import", "mlflow", "--from", str(mlruns.folder), "-p", account.project_id, "--dry-run",
        "--json",
    )  # fmt: skip

    assert dry.code == 0, dry
    assert dry.json["dry_run"] is True
    assert (dry.json["runs_created"], dry.json["metric_points"]) == (6, 2556)
    assert dry.json["artifacts_uploaded"] == 4
    assert await _experiments(daemons, account) == {}


async def test_one_experiment_only(etp, account, daemons, mlruns):
    done = await etp(
        "import", "mlflow", "--from", str(mlruns.folder), "-p", account.project_id,
        "--experiment", "wing-b", "--json",
    )  # fmt: skip

    assert done.code == 0, done
    assert done.json["runs_created"] == 1
    assert set(await _experiments(daemons, account)) == {"wing-b"}


async def test_errors(etp, account, mlruns, tmp_path):
    folder = str(mlruns.folder)
    unknown = await etp("import", "mlflow", "--from", folder, "-p", "no such project", "--json")
    assert unknown.code == 3, unknown
    assert unknown.error["code"] == "project_not_found"

    missing = await etp("import", "mlflow", "--from", str(tmp_path / "nowhere"), "-p", "x")
    assert missing.code == 2, missing
    assert "no such folder" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    not_mlflow = await etp("import", "mlflow", "--from", str(empty), "-p", "x", "--json")
    assert not_mlflow.code == 2, not_mlflow
    assert not_mlflow.error["code"] == "source_unreadable"
    assert list(empty.iterdir()) == []  # MLflow was not let loose on it

    no_experiment = await etp(
        "import", "mlflow", "--from", folder, "-p", account.project_id, "-e", "nope", "--json"
    )
    assert no_experiment.code == 3, no_experiment
    assert "nope" in no_experiment.error["detail"]

    shim = tmp_path / "shim" / "mlflow"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named mlflow')\n")
    pythonpath = os.pathsep.join(filter(None, [str(shim.parent), os.environ.get("PYTHONPATH")]))
    no_extra = await etp(
        "import", "mlflow", "--from", folder, "-p", account.project_id, "--json",
        env={"PYTHONPATH": pythonpath},
    )  # fmt: skip
    assert no_extra.code == 2, no_extra
    assert no_extra.error["code"] == "missing_extra"
    assert "pip install 'etp-client[mlflow]'" in no_extra.error["detail"]


# -- from a tracking server ------------------------------------------------------------------

# The interpreter that runs `mlflow server` (the full `mlflow`, e.g. the bench extra's); the
# test is skipped when it has none.
SERVER_PYTHON = os.environ.get("ETP_TEST_MLFLOW_PYTHON", sys.executable)


@pytest.fixture
async def mlflow_server(tmp_path):
    probe = await asyncio.create_subprocess_exec(
        SERVER_PYTHON, "-c", "import mlflow.server",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    if await probe.wait() != 0:
        pytest.skip("no MLflow tracking server here (pip install mlflow)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        SERVER_PYTHON, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--artifacts-destination", str(tmp_path / "mlflow-artifacts"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    try:
        for _ in range(120):
            if await asyncio.to_thread(healthy):
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail("the MLflow server did not start within 60 s")
        yield url
    finally:
        process.terminate()
        await process.wait()


async def test_import_from_a_tracking_server_with_proxied_artifacts(
    etp, account, daemons, mlflow_server, tmp_path
):
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.create_experiment("served", tags={"k": "v"})
    killed = client.create_run(experiment, start_time=T0, run_name="killed", tags={"team": "x"})
    _log(client, killed.info.run_id, _history("loss", 1200, special=True))
    client.set_terminated(killed.info.run_id, "KILLED", end_time=T0 + 5000)
    running = client.create_run(experiment, start_time=T0 + 1, run_name="going")
    files = tmp_path / "files"
    (files / "sub").mkdir(parents=True)
    (files / "sub" / "a.txt").write_text("hello")
    (files / "b.bin").write_bytes(random.Random(3).randbytes(30_000))
    client.log_artifacts(running.info.run_id, str(files), "out")
    client.log_param(running.info.run_id, "lr", "0.1")

    args = ("import", "mlflow", "--from", mlflow_server, "-p", account.project_id, "--json")
    # A loaded machine's MLflow server takes up to a second a request.
    first = await etp(*args, within=300)
    again = await etp(*args, within=300)

    assert first.code == 0, first
    assert (first.json["runs_created"], first.json["metric_points"]) == (2, 1204)
    assert first.json["artifacts_uploaded"] == 2
    assert again.code == 0, again
    assert (again.json["runs_unchanged"], again.json["artifacts_skipped"]) == (2, 2)
    assert again.json["metric_points"] + again.json["artifacts_uploaded"] == 0
    runs = await _imported(daemons, account)
    copy = runs[killed.info.run_id]
    assert copy["status"] == "failed"
    assert copy["metadata"]["mlflow"]["status"] == "KILLED"
    assert copy["metadata"]["mlflow"]["source"]["tracking_uri"] == mlflow_server
    got = await _points(daemons, account, copy["id"], "loss")
    assert got == _expected_points(client, killed.info.run_id, "loss")
    going = runs[running.info.run_id]
    assert (going["status"], going["params"]) == ("running", {"lr": "0.1"})
    artifacts = await _pages(daemons, account, f"/api/v1/runs/{going['id']}/artifacts")
    assert sorted((a["name"], a["size"], a["sha256"]) for a in artifacts) == [
        ("out/" + path, size, digest) for path, size, digest in _files(files)
    ]
