"""The Python API for training scripts and notebooks:

    import etp

    with etp.start_run(project="vision", experiment="resnet", params={"lr": 1e-3}) as run:
        for step in range(10_000):
            run.log_metric("loss", loss, step=step)
        run.log_artifact("model.pt", type="model")

Metrics go through a `MetricBatcher` (sent in the background, retried through brief outages);
they are flushed on `finish` and when the interpreter exits. Leaving the `with` block by an
exception finishes the run as `failed`; a run still open at exit is finished too (`failed` after
an uncaught exception, else `succeeded`).
"""

import atexit
import os
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from etp.artifacts import Progress, upload_artifact
from etp.client import Client
from etp.config import load_config
from etp.errors import UsageError
from etp.metrics import MetricBatcher, metric_point
from etp.resolve import find_experiment

FINISHED = ("succeeded", "failed")
_open_runs: "set[Run]" = set()  # finished at exit if the script did not
_hooks_installed = False
_hooks_lock = threading.Lock()
_uncaught: list[BaseException] = []


class Run:
    """A run being logged into. Thread-safe for logging metrics."""

    def __init__(
        self,
        client: Client,
        run: dict[str, Any],
        *,
        owns_client: bool = False,
        flush_seconds: float = 1.0,
        retry_for: float = 600.0,
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self.data = run
        self._metrics = MetricBatcher(
            client, run["id"], flush_seconds=flush_seconds, retry_for=retry_for
        )
        self._lock = threading.Lock()
        self._finished = run.get("status") in FINISHED
        if not self._finished:
            _open_runs.add(self)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.data.get("params") or {})

    @property
    def metrics(self) -> MetricBatcher:
        return self._metrics

    # -- logging -----------------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Merges `params` into the run's (a value given again replaces the old one)."""
        # Merged by the service under the run's lock: other writers' keys are kept.
        self.data = self._client.post(f"/api/v1/runs/{self.id}/params", {"params": dict(params)})

    def log_metric(
        self,
        name: str,
        value: float,
        step: int | None = None,
        *,
        timestamp: datetime | str | None = None,
    ) -> None:
        """Queues one point (no network here); a missing step is the next of that name."""
        self._metrics.add(metric_point(name, value, step=step, timestamp=timestamp))

    def log_metrics(
        self,
        metrics: Mapping[str, float],
        step: int | None = None,
        *,
        timestamp: datetime | str | None = None,
    ) -> None:
        for name, value in metrics.items():
            self.log_metric(name, value, step, timestamp=timestamp)

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        type: str = "file",
        metadata: dict[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Uploads a file (streamed, its sha256 checked); the stored artifact."""
        return upload_artifact(
            self._client,
            self.id,
            path,
            name=name,
            type=type,
            metadata=metadata,
            progress=progress,
        )

    def flush(self, timeout: float | None = None) -> None:
        """Waits until every metric logged so far is stored."""
        self._metrics.flush(timeout)

    # -- ending ------------------------------------------------------------------------------

    def finish(self, status: str = "succeeded", *, timeout: float | None = None) -> None:
        """Flushes the metrics and moves the run to `status` (`succeeded` or `failed`). The run
        is finished even when its metrics could not all be stored; that error is raised then."""
        if status not in FINISHED:
            raise UsageError(f"a run finishes as succeeded or failed, not {status!r}")
        if self._finished:
            return
        self._finished = True
        _open_runs.discard(self)
        try:
            self._metrics.close(timeout)
        finally:
            try:
                self.data = self._client.patch(f"/api/v1/runs/{self.id}", {"status": status})
            finally:
                if self._owns_client:
                    self._client.close()

    def fail(self) -> None:
        self.finish("failed")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish("succeeded")
            return
        try:
            self.finish("failed")
        except Exception as error:  # the body's exception is the one to see
            print(f"etp: could not finish run {self.id}: {error}", file=sys.stderr)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.data.get('name')!r}, status={self.status!r})"


def _at_exit() -> None:
    status = "failed" if _uncaught else "succeeded"
    for run in list(_open_runs):
        try:
            run.finish(status, timeout=120)
        except Exception as error:
            print(f"etp: run {run.id} at exit: {error}", file=sys.stderr)


def _install_hooks() -> None:
    global _hooks_installed
    with _hooks_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        previous = sys.excepthook

        def excepthook(
            kind: type[BaseException], value: BaseException, tb: TracebackType | None
        ) -> None:
            _uncaught.append(value)
            previous(kind, value, tb)

        sys.excepthook = excepthook
        atexit.register(_at_exit)


def start_run(
    project: str | None = None,
    experiment: str | None = None,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    tags: list[str] | None = None,
    notes: str | None = None,
    git_sha: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    client: Client | None = None,
    flush_seconds: float = 1.0,
    retry_for: float = 600.0,
) -> Run:
    """Creates a run in `experiment` (an id, or a name in `project`, created if missing) and
    starts it; or, with `run_id`, continues that run (started if still a draft). The URL and key
    come from `url`/`api_key`, else `ETP_URL`/`ETP_API_KEY`, else `etp login`'s file."""
    owns = client is None
    if client is None:
        client = Client.from_config(load_config(url=url, api_key=api_key))
    try:
        if run_id is not None:
            data = client.get(f"/api/v1/runs/{run_id}")
        else:
            if experiment is None:
                raise UsageError("start_run needs an experiment (an id, or a name and a project)")
            found = find_experiment(client, experiment, project=project, create=True)
            body: dict[str, Any] = {
                "name": name or datetime.now(UTC).strftime("run %Y-%m-%d %H:%M:%S"),
                "params": dict(params or {}),
            }
            for key, value in (
                ("tags", tags),
                ("notes", notes),
                ("git_sha", git_sha),
                ("metadata", metadata),
            ):
                if value is not None:
                    body[key] = value
            data = client.post(f"/api/v1/experiments/{found['id']}/runs", body)
        if data["status"] == "draft":
            data = client.patch(f"/api/v1/runs/{data['id']}", {"status": "running"})
    except BaseException:
        if owns:
            client.close()
        raise
    _install_hooks()
    run = Run(client, data, owns_client=owns, flush_seconds=flush_seconds, retry_for=retry_for)
    if run_id is not None and params:
        run.log_params(params)
    return run
