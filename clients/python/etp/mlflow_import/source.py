"""Reading MLflow through its own client (`mlflow-skinny`, the `etp-client[mlflow]` extra): a
tracking server (`http(s)://…`, `databricks`, …), or a local `mlruns` folder (a path or a `file:`
URI), which MLflow 3 reads only when `MLFLOW_ALLOW_FILE_STORE` allows it: reading is all we do."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from etp.errors import EtpError, ExitCode, UsageError
from etp.mlflow_import.mapping import MlflowRun, Point, history_order

INSTALL_HINT = "pip install 'etp-client[mlflow]'"
PAGE = 1000


class MissingExtra(UsageError):
    default_code = "missing_extra"


class SourceError(EtpError):
    """The MLflow source cannot be read."""

    default_code = "source_unreadable"
    default_exit_code = ExitCode.USAGE


def _mlflow() -> Any:
    try:
        import mlflow.tracking
    except ImportError as exc:
        raise MissingExtra(
            f"reading MLflow needs the mlflow extra: {INSTALL_HINT} ({exc})"
        ) from None
    return mlflow


def tracking_uri(given: str) -> str:
    """A tracking URI for `given`: a URI as it is, a folder as its `file://` URI."""
    parts = urlsplit(given)
    if parts.scheme and len(parts.scheme) > 1:  # not a Windows drive letter
        return given
    path = Path(given).expanduser().resolve()
    return path.as_uri()


def public_uri(uri: str) -> str:
    """The URI without credentials (what the imported runs record as their origin)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class MlflowExperiment:
    experiment_id: str
    name: str
    tags: dict[str, str]


class MlflowSource:
    """One MLflow tracking store, read through `MlflowClient`."""

    def __init__(self, given: str) -> None:
        self.uri = tracking_uri(given)
        self.public_uri = public_uri(self.uri)
        mlflow = _mlflow()
        scheme = urlsplit(self.uri).scheme
        self.local = scheme == "file"
        if self.local:
            folder = Path(unquote(urlsplit(self.uri).path))
            if not folder.is_dir():
                raise SourceError(f"{given}: no such folder (an mlruns folder or a tracking URI)")
            # MLflow's file store would make its Default experiment in any folder it is given.
            if not any((child / "meta.yaml").is_file() for child in folder.iterdir()):
                raise SourceError(f"{given}: not an MLflow store (no experiment folders in it)")
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            self._client = mlflow.tracking.MlflowClient(tracking_uri=self.uri)
        except Exception as exc:
            raise SourceError(f"cannot read MLflow at {self.public_uri}: {exc}") from None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EtpError:
            raise
        except Exception as exc:
            raise SourceError(
                f"MLflow at {self.public_uri}: {what}: {exc}",
                exit_code=ExitCode.OTHER if self.local else ExitCode.UNAVAILABLE,
            ) from None

    def experiments(self, names: list[str] | None = None) -> list[MlflowExperiment]:
        """The active experiments (those named, when `names` is given), by id."""
        found: list[MlflowExperiment] = []
        token: str | None = None
        while True:
            page = self._call(
                "listing experiments",
                self._client.search_experiments,
                max_results=PAGE,
                page_token=token,
            )
            for item in page:
                if names and item.name not in names:
                    continue
                found.append(MlflowExperiment(item.experiment_id, item.name, dict(item.tags)))
            token = page.token
            if not token:
                break
        if names:
            missing = sorted(set(names) - {e.name for e in found})
            if missing:
                raise SourceError(
                    f"no active MLflow experiment named {', '.join(map(repr, missing))}",
                    code="experiment_not_found",
                    exit_code=ExitCode.NOT_FOUND,
                )
        return sorted(found, key=lambda e: (_numeric(e.experiment_id), e.experiment_id))

    def runs(self, experiment_id: str) -> list[MlflowRun]:
        """The experiment's active runs, oldest first."""
        runs: list[MlflowRun] = []
        token: str | None = None
        while True:
            page = self._call(
                "listing runs",
                self._client.search_runs,
                [experiment_id],
                max_results=PAGE,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            runs.extend(_run(item) for item in page)
            token = page.token
            if not token:
                break
        return runs

    def history(self, run_id: str, key: str) -> list[Point]:
        metrics = self._call(
            f"metric {key!r} of run {run_id}", self._client.get_metric_history, run_id, key
        )
        return history_order(
            Point(m.key, float(m.value), int(m.step), int(m.timestamp)) for m in metrics
        )

    def artifacts(self, run_id: str, path: str | None = None) -> Iterator[tuple[str, int | None]]:
        """Every file of the run's artifacts (relative path, size), depth first."""
        listed = self._call(f"artifacts of run {run_id}", self._client.list_artifacts, run_id, path)
        for item in sorted(listed, key=lambda i: i.path):
            if item.is_dir:
                yield from self.artifacts(run_id, item.path)
            else:
                yield item.path, item.file_size

    @staticmethod
    def local_file(run: MlflowRun, path: str) -> Path | None:
        """The artifact's own file when the run's artifacts are in a local folder."""
        parts = urlsplit(run.artifact_uri or "")
        if parts.scheme != "file":
            return None
        local = Path(unquote(parts.path)) / path
        return local if local.is_file() else None

    @contextmanager
    def download(self, run_id: str, path: str) -> Iterator[Path]:
        """The artifact as a local file, removed afterwards (a local store's own file is read
        where it is)."""
        folder = tempfile.mkdtemp(prefix="etp-mlflow-")
        try:
            local = self._call(
                f"artifact {path!r} of run {run_id}",
                self._client.download_artifacts,
                run_id,
                path,
                folder,
            )
            yield Path(local)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _numeric(value: str) -> int:
    return int(value) if value.isdigit() else -1


def _run(item: Any) -> MlflowRun:
    info, data = item.info, item.data
    return MlflowRun(
        run_id=info.run_id,
        experiment_id=info.experiment_id,
        run_name=getattr(info, "run_name", None) or None,
        status=info.status,
        start_time=info.start_time,
        end_time=info.end_time,
        params=dict(data.params),
        tags=dict(data.tags),
        metric_keys=sorted(data.metrics),
        artifact_uri=getattr(info, "artifact_uri", None),
    )
