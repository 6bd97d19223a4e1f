"""How an MLflow object becomes an ETP one (docs/cli.md, `etp import mlflow`), as pure functions
of plain data, so the door's mapping and the importer's can be compared line by line.

- run name: MLflow's `run_name` (else the `mlflow.runName` tag, else the run id), at most 200
  characters (a longer one is kept whole in `metadata.mlflow.run_name`);
- params: as MLflow gives them (strings);
- tags: whole in `metadata.mlflow.tags`; each `key:value` that is a valid ETP tag also in `tags`
  (sorted by key, at most 50); `mlflow.source.git.commit` fills `git_sha` when it is a SHA
  (in lower case);
- status: RUNNING → running, FINISHED → succeeded, FAILED → failed, KILLED → failed with
  `metadata.mlflow.status = "KILLED"`, SCHEDULED → draft;
- MLflow's start and end times (ms) in `metadata.mlflow.start_time` / `end_time`;
- the origin in `metadata.mlflow.source = {tracking_uri, run_id, experiment_id}`;
- an experiment's MLflow tags in its `metadata.mlflow.tags` (when it has any);
- an artifact keeps its relative path as its name and in `metadata.mlflow.path`.
"""

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TAG_PATTERN = re.compile(r"^[\w.:/+\-]+$")
MAX_TAG_LENGTH = 64
MAX_TAGS = 50
MAX_NAME = 200
GIT_SHA = re.compile(r"^[0-9a-f]{7,40}$")
GIT_COMMIT_TAG = "mlflow.source.git.commit"
RUN_NAME_TAG = "mlflow.runName"

STATUSES = {
    "RUNNING": "running",
    "FINISHED": "succeeded",
    "FAILED": "failed",
    "KILLED": "failed",
    "SCHEDULED": "draft",
}
# The statuses an ETP run passes through, in order (its state machine).
ORDER = ("draft", "running", "succeeded")
FINISHED = frozenset({"succeeded", "failed"})

# Metric timestamps the service takes: from 1970 to a little ahead of its clock.
MAX_FUTURE_MS = 300_000


@dataclass(frozen=True)
class Source:
    """Where a run came from: what `metadata.mlflow.source` holds."""

    tracking_uri: str
    run_id: str
    experiment_id: str

    def as_dict(self) -> dict[str, str]:
        return {
            "tracking_uri": self.tracking_uri,
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
        }


@dataclass(frozen=True)
class MlflowRun:
    """The parts of an MLflow run the import copies (read from `mlflow.entities.Run`)."""

    run_id: str
    experiment_id: str
    run_name: str | None
    status: str
    start_time: int | None
    end_time: int | None
    params: Mapping[str, str]
    tags: Mapping[str, str]
    metric_keys: Sequence[str]
    artifact_uri: str | None = None


def is_tag(text: str) -> bool:
    return 1 <= len(text) <= MAX_TAG_LENGTH and TAG_PATTERN.match(text) is not None


def etp_tags(tags: Mapping[str, str]) -> list[str]:
    """The MLflow tags that are valid ETP tags as `key:value`, sorted by key, at most 50."""
    out: list[str] = []
    for key in sorted(tags):
        tag = f"{key}:{tags[key]}"
        if is_tag(tag):
            out.append(tag)
            if len(out) == MAX_TAGS:
                break
    return out


def git_sha(tags: Mapping[str, str]) -> str | None:
    value = tags.get(GIT_COMMIT_TAG, "").lower()
    return value if GIT_SHA.match(value) else None


def run_name(run: MlflowRun) -> str:
    return run.run_name or run.tags.get(RUN_NAME_TAG) or run.run_id


def etp_status(mlflow_status: str) -> str:
    try:
        return STATUSES[mlflow_status]
    except KeyError:
        raise ValueError(f"unknown MLflow run status {mlflow_status!r}") from None


def mlflow_metadata(run: MlflowRun, source: Source) -> dict[str, Any]:
    """What the run's `metadata.mlflow` holds."""
    out: dict[str, Any] = {"source": source.as_dict(), "tags": dict(run.tags)}
    name = run_name(run)
    if len(name) > MAX_NAME:
        out["run_name"] = name
    if run.start_time is not None:
        out["start_time"] = run.start_time
    if run.end_time is not None:
        out["end_time"] = run.end_time
    if run.status == "KILLED":
        out["status"] = "KILLED"
    return out


def run_fields(
    run: MlflowRun, source: Source, stored: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ETP run's fields (without its status). Given the run as ETP has it (`stored`), what
    was added or changed in ETP since the last import is kept unless MLflow changed it too: other
    metadata keys, params MLflow does not have, tags that do not come from MLflow's, and the name
    when MLflow's is still the one imported last time."""
    name = run_name(run)
    fields: dict[str, Any] = {
        "name": name[:MAX_NAME],
        "params": dict(run.params),
        "tags": etp_tags(run.tags),
        "git_sha": git_sha(run.tags),
        "metadata": {"mlflow": mlflow_metadata(run, source)},
    }
    if stored is None:
        return fields
    metadata = stored.get("metadata") or {}
    before = metadata.get("mlflow") if isinstance(metadata.get("mlflow"), dict) else None
    if before is not None:
        earlier = before.get("tags")
        derived = set(etp_tags(earlier if isinstance(earlier, dict) else {}))
        own = [tag for tag in stored.get("tags") or [] if tag not in derived]
        fields["tags"] = list(dict.fromkeys([*own, *fields["tags"]]))[:MAX_TAGS]
        if _imported_name(before) == name:
            fields["name"] = stored.get("name", fields["name"])
    fields["params"] = {**(stored.get("params") or {}), **fields["params"]}
    fields["metadata"] = {**metadata, **fields["metadata"]}
    return fields


def _imported_name(mlflow: Mapping[str, Any]) -> str | None:
    """The MLflow run name the last import saw (MLflow keeps it in the `mlflow.runName` tag)."""
    tags = mlflow.get("tags")
    name = mlflow.get("run_name") or (tags.get(RUN_NAME_TAG) if isinstance(tags, dict) else None)
    return name if isinstance(name, str) else None


def changed_fields(wanted: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `wanted` the stored run does not have yet (tags compared as sets; a stored
    `git_sha` is not cleared)."""
    out: dict[str, Any] = {}
    for key, value in wanted.items():
        have = stored.get(key)
        if key == "tags":
            if set(value) != set(have or []):
                out[key] = value
        elif key == "git_sha":
            if value is not None and value != have:
                out[key] = value
        elif value != have:
            out[key] = value
    return out


def status_path(current: str, wanted: str) -> list[str]:
    """The moves that take an ETP run from `current` to `wanted` through its state machine
    (draft → running → succeeded or failed); empty when it is there, or cannot go there (a
    finished or archived run stays as it is)."""
    if current == wanted or current in FINISHED or current == "archived":
        return []
    steps = ["running"] if current == "draft" and wanted != "draft" else []
    if wanted in FINISHED:
        steps.append(wanted)
    return steps


# -- metrics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    name: str
    value: float
    step: int
    timestamp: int  # ms

    def as_json(self, now_ms: int) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "value": json_value(self.value)}
        out["step"] = self.step
        if 0 <= self.timestamp <= now_ms + MAX_FUTURE_MS:
            stamp = datetime.fromtimestamp(self.timestamp / 1000, UTC)
            out["timestamp"] = stamp.isoformat(timespec="milliseconds")
        return out


def json_value(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def history_order(points: Iterable[Point]) -> list[Point]:
    """A metric's history in an order that does not depend on how the source lists it: by step,
    then time, then value, so that points added later (a run still logging) come after the ones
    copied before."""
    return sorted(points, key=lambda p: (p.step, p.timestamp, repr(p.value)))


@dataclass(frozen=True)
class Chunk:
    """One request's points: `(name, first, end)` ranges of each name's history, in order."""

    batch_id: str
    ranges: tuple[tuple[str, int, int], ...]
    points: tuple[Point, ...]


def plan_chunks(
    run_id: str, histories: Mapping[str, Sequence[Point]], stored: Mapping[str, int], size: int
) -> list[Chunk]:
    """The points not stored yet (each name's history past the `stored` count of that name),
    packed into requests of at most `size` points. A chunk's `batch_id` is derived from the
    ranges it covers, so a chunk sent again (an answer lost, an import resumed) is stored once."""
    chunks: list[Chunk] = []
    ranges: list[tuple[str, int, int]] = []
    points: list[Point] = []

    def close() -> None:
        if points:
            digest = hashlib.sha256(json.dumps([run_id, ranges]).encode()).hexdigest()[:40]
            chunks.append(Chunk(f"mlflow-{run_id}-{digest}", tuple(ranges), tuple(points)))
            ranges.clear()
            points.clear()

    for name in sorted(histories):
        history = histories[name]
        start = stored.get(name, 0)
        while start < len(history):
            end = min(len(history), start + size - len(points))
            ranges.append((name, start, end))
            points.extend(history[start:end])
            start = end
            if len(points) >= size:
                close()
    close()
    return chunks
