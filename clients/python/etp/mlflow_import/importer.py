"""`etp import mlflow`: copies MLflow experiments, runs, params, tags, metric histories and
artifacts into an ETP project through ETP's public API (etp.client), following the shared
mapping (etp.mlflow_import.mapping).

Every run is reconciled rather than copied blindly, so an import can be run again, or resumed
after Ctrl-C or a crash, and copies nothing twice:

- an imported run is found by `metadata.mlflow.source.run_id` among the project's runs (the
  run list cannot filter on metadata, so they are listed once), wherever it is;
- its fields are patched only where they differ;
- metric points: each name's history past the count the run already has (ETP's per-name summary,
  kept in the batch's transaction, so it counts exactly what is stored), sent in requests of at
  most 10,000 points, each with a `batch_id` derived from the ranges it covers (a resend is
  stored once);
- artifacts: those with the same relative path and size (and SHA-256 when the source's file is
  local) are skipped;
- the run is finished (succeeded or failed) only once all of that is copied, so a finished ETP
  run whose MLflow run is finished too is complete, and only its fields are compared.
"""

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from etp.artifacts import file_sha256, upload_artifact
from etp.client import Client
from etp.errors import ApiError
from etp.metrics import MAX_POINTS
from etp.mlflow_import.mapping import (
    FINISHED,
    MAX_NAME,
    MlflowRun,
    Source,
    changed_fields,
    etp_status,
    plan_chunks,
    run_fields,
    run_name,
    status_path,
)
from etp.mlflow_import.source import MlflowExperiment, MlflowSource
from etp.resolve import find_project

# A run whose data the service refuses is reported and the import goes on with the next one;
# any other error (auth, the service down, the source unreadable) stops it.
RUN_REFUSALS = frozenset({400, 409, 413, 422})
DEFAULT_EXPERIMENT = ("0", "Default")


@dataclass
class Summary:
    source: str
    project_id: str
    dry_run: bool = False
    experiments_created: int = 0
    experiments_reused: int = 0
    runs_seen: int = 0
    runs_created: int = 0
    runs_updated: int = 0
    runs_unchanged: int = 0
    runs_failed: int = 0
    metric_points: int = 0
    metric_batches: int = 0
    artifacts_uploaded: int = 0
    artifacts_skipped: int = 0
    artifact_bytes: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reporter:
    """What the import tells as it goes (the CLI draws a progress bar from it)."""

    def start(self, runs: int) -> None:
        pass

    def run(self, experiment: str, name: str) -> None:
        pass

    def copied(self, points: int = 0, artifacts: int = 0) -> None:
        pass

    def done(self) -> None:
        pass


class MlflowImport:
    def __init__(
        self,
        client: Client,
        source: MlflowSource,
        project: str,
        *,
        experiments: list[str] | None = None,
        dry_run: bool = False,
        batch_points: int = MAX_POINTS,
        reporter: Reporter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._source = source
        self._project = find_project(client, project)
        self._names = experiments
        self._dry = dry_run
        self._batch_points = batch_points
        self._report = reporter or Reporter()
        self._clock = clock
        self._write_count = 0
        self.summary = Summary(source.public_uri, str(self._project["id"]), dry_run=dry_run)

    def run(self) -> Summary:
        plan: list[tuple[MlflowExperiment, list[MlflowRun]]] = []
        for experiment in self._source.experiments(self._names):
            runs = self._source.runs(experiment.experiment_id)
            default = (experiment.experiment_id, experiment.name) == DEFAULT_EXPERIMENT
            if runs or not default or self._names:
                plan.append((experiment, runs))
        self._report.start(sum(len(runs) for _, runs in plan))
        imported = self._imported_runs()
        for experiment, runs in plan:
            # An experiment renamed in MLflow after its runs were imported gets no second home.
            homeless = not runs or any(run.run_id not in imported for run in runs)
            target = self._experiment(experiment, create=homeless)
            for mlflow_run in runs:
                self._report.run(experiment.name, run_name(mlflow_run))
                self.summary.runs_seen += 1
                try:
                    self._run(target, mlflow_run, imported.get(mlflow_run.run_id))
                except ApiError as exc:
                    if exc.status not in RUN_REFUSALS:
                        raise
                    self.summary.runs_failed += 1
                    self.summary.failures.append(
                        {
                            "experiment": experiment.name,
                            "run_id": mlflow_run.run_id,
                            "error": exc.as_dict(),
                        }
                    )
                self._report.done()
        return self.summary

    # -- experiments ---------------------------------------------------------------------------

    def _experiment(self, experiment: MlflowExperiment, *, create: bool) -> dict[str, Any] | None:
        """The ETP experiment of that name in the project (its MLflow tags set), created if
        missing and `create`; None when it does not exist (yet, in a dry run)."""
        name = experiment.name[:MAX_NAME]
        project_id = self.summary.project_id
        listed = self._client.paginate("/api/v1/experiments", {"project_id": project_id, "q": name})
        found = sorted(
            (item for item in listed if item.get("name") == name),
            key=lambda item: str(item.get("created_at")),
        )
        wanted = {"tags": experiment.tags} if experiment.tags else {}
        if found:
            self.summary.experiments_reused += 1
            current: dict[str, Any] = found[0]
            metadata = dict(current.get("metadata") or {})
            mlflow = {**(metadata.get("mlflow") or {}), **wanted}
            if wanted and metadata.get("mlflow") != mlflow and not self._dry:
                current = self._client.patch(
                    f"/api/v1/experiments/{current['id']}",
                    {"metadata": {**metadata, "mlflow": mlflow}},
                )
            return current
        if not create:
            return None
        self.summary.experiments_created += 1
        if self._dry:
            return None
        created: dict[str, Any] = self._client.post(
            "/api/v1/experiments",
            {
                "project_id": project_id,
                "name": name,
                "metadata": {"mlflow": wanted} if wanted else {},
            },
        )
        return created

    def _imported_runs(self) -> dict[str, dict[str, Any]]:
        """The project's runs that came from MLflow, by MLflow run id (the oldest copy when
        there are several). The run list cannot filter on metadata: the project's runs are
        listed once, and matched here."""
        found: dict[str, dict[str, Any]] = {}
        listed = self._client.paginate("/api/v1/runs", {"project_id": self.summary.project_id})
        for run in sorted(listed, key=lambda item: str(item.get("created_at"))):
            mlflow = (run.get("metadata") or {}).get("mlflow")
            source = mlflow.get("source") if isinstance(mlflow, dict) else None
            run_id = source.get("run_id") if isinstance(source, dict) else None
            if isinstance(run_id, str):
                found.setdefault(run_id, run)
        return found

    # -- runs ----------------------------------------------------------------------------------

    def _run(
        self, experiment: dict[str, Any] | None, run: MlflowRun, stored: dict[str, Any] | None
    ) -> None:
        source = Source(self.summary.source, run.run_id, run.experiment_id)
        wanted = etp_status(run.status)
        if stored is None:
            self._new_run(experiment, run, source, wanted)
            return
        if stored["status"] == "archived":
            self.summary.runs_unchanged += 1
            return
        writes = self._writes()
        patch = changed_fields(run_fields(run, source, stored), stored)
        if patch:
            stored = self._patch(stored, patch)
        if not (stored["status"] in FINISHED and wanted in FINISHED):
            stored = self._copy_data(stored, run, wanted, fresh=False)
        if self._writes() == writes:
            self.summary.runs_unchanged += 1
        else:
            self.summary.runs_updated += 1

    def _new_run(
        self, experiment: dict[str, Any] | None, run: MlflowRun, source: Source, wanted: str
    ) -> None:
        """Creates the run (a draft) and copies the rest; in a dry run, or into an experiment a
        dry run has not created, only counts."""
        stored: dict[str, Any] = {"id": None, "status": "draft"}
        if experiment is not None and not self._dry:
            fields = {k: v for k, v in run_fields(run, source).items() if v is not None}
            stored = self._client.post(f"/api/v1/experiments/{experiment['id']}/runs", fields)
        self.summary.runs_created += 1
        self._copy_data(stored, run, wanted, fresh=True)

    def _copy_data(
        self, stored: dict[str, Any], run: MlflowRun, wanted: str, *, fresh: bool
    ) -> dict[str, Any]:
        """Starts the run if it is to leave draft, copies what its metrics and artifacts lack,
        then finishes it if it is to be finished."""
        moves = status_path(stored["status"], wanted)
        finish = moves[-1] if moves and moves[-1] in FINISHED else None
        for status in moves:
            if status != finish:
                stored = self._patch(stored, {"status": status})
        self._copy_metrics(stored, run, fresh)
        self._copy_artifacts(stored, run, fresh)
        if finish is not None:
            stored = self._patch(stored, {"status": finish})
        return stored

    def _patch(self, stored: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        self._count_write()
        if self._dry or stored["id"] is None:
            return {**stored, **changes}
        updated: dict[str, Any] = self._client.patch(f"/api/v1/runs/{stored['id']}", changes)
        return updated

    # -- metrics and artifacts -----------------------------------------------------------------

    def _copy_metrics(self, stored: dict[str, Any], run: MlflowRun, fresh: bool) -> None:
        if not run.metric_keys:
            return
        counts: dict[str, int] = {}
        if not fresh and stored["id"] is not None:
            for item in self._client.paginate(f"/api/v1/runs/{stored['id']}/metrics"):
                counts[item["name"]] = int(item["count"])
        histories = {key: self._source.history(run.run_id, key) for key in run.metric_keys}
        chunks = plan_chunks(run.run_id, histories, counts, self._batch_points)
        now_ms = int(self._clock() * 1000)
        for chunk in chunks:
            self._count_write()
            if not (self._dry or stored["id"] is None):
                self._client.post(
                    f"/api/v1/runs/{stored['id']}/metrics",
                    {
                        "batch_id": chunk.batch_id,
                        "metrics": [point.as_json(now_ms) for point in chunk.points],
                    },
                )
            self.summary.metric_batches += 1
            self.summary.metric_points += len(chunk.points)
            self._report.copied(points=len(chunk.points))

    def _copy_artifacts(self, stored: dict[str, Any], run: MlflowRun, fresh: bool) -> None:
        have: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if not fresh and stored["id"] is not None:
            for item in self._client.paginate(f"/api/v1/runs/{stored['id']}/artifacts"):
                have[item["name"]].append(item)
        for path, size in self._source.artifacts(run.run_id):
            local = self._source.local_file(run, path)
            if self._already_there(have.get(path, []), size, local):
                self.summary.artifacts_skipped += 1
                continue
            self._count_write()
            if not (self._dry or stored["id"] is None):
                if local is not None:
                    self._upload(stored["id"], local, path)
                else:
                    with self._source.download(run.run_id, path) as copy:
                        if self._already_there(have.get(path, []), copy.stat().st_size, copy):
                            self.summary.artifacts_skipped += 1
                            continue
                        self._upload(stored["id"], copy, path)
            self.summary.artifacts_uploaded += 1
            self._report.copied(artifacts=1)

    @staticmethod
    def _already_there(copies: list[dict[str, Any]], size: int | None, local: Path | None) -> bool:
        """A stored artifact of that path has the file's size (and SHA-256, when the file is at
        hand); an unknown size is checked once the file is downloaded."""
        if size is None:
            return False
        same = [item for item in copies if item.get("size") == size]
        if not same or local is None:
            return bool(same)
        digest = file_sha256(local)
        return any(item.get("sha256") == digest for item in same)

    def _upload(self, run_id: str, file: Path, path: str) -> None:
        artifact = upload_artifact(
            self._client, run_id, file, name=path, type="file", metadata={"mlflow": {"path": path}}
        )
        self.summary.artifact_bytes += int(artifact.get("size", 0))

    # -- counting writes -----------------------------------------------------------------------

    def _count_write(self) -> None:
        self._write_count += 1

    def _writes(self) -> int:
        return self._write_count
