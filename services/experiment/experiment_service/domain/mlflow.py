"""How MLflow's runs and experiments live in ETP's (docs/mlflow.md): the MLflow door turns each
MLflow change into a patch of the run or experiment as it is, and reads MLflow's view back.

    MLflow tags       kept whole in metadata.mlflow.tags; each `key:value` that is a valid ETP
                      tag is also one of the run's tags (so ETP's tag filter finds it)
    mlflow.source.git.commit   also the run's git_sha (when it is a SHA)
    status            RUNNING ↔ running, FINISHED ↔ succeeded, FAILED ↔ failed, KILLED ↔ failed
                      with metadata.mlflow.status = KILLED, SCHEDULED ↔ draft
    deleted           metadata.mlflow.lifecycle_stage = deleted (MLflow can restore it)
"""

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import orjson

from backend_common.statuses import RunStatus
from experiment_service.domain.errors import ParamValueChanged
from experiment_service.domain.models import Experiment, Run
from experiment_service.models import ExperimentUpdate, RunUpdate

KEY = "mlflow"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
RUN_NAME_TAG = "mlflow.runName"
DELETED = "deleted"
ACTIVE = "active"
MAX_RUN_TAGS = 50  # ETP's limit; MLflow tags past it live in the metadata only
_ETP_TAG = re.compile(r"^[\w.:/+\-]{1,64}$")
_GIT_SHA = re.compile(r"^[0-9a-f]{7,40}$")


class MlflowStatus(StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


ETP_STATUS = {
    MlflowStatus.RUNNING: RunStatus.RUNNING,
    MlflowStatus.SCHEDULED: RunStatus.DRAFT,
    MlflowStatus.FINISHED: RunStatus.SUCCEEDED,
    MlflowStatus.FAILED: RunStatus.FAILED,
    MlflowStatus.KILLED: RunStatus.FAILED,
}
_MLFLOW_STATUS = {
    RunStatus.DRAFT: MlflowStatus.SCHEDULED,
    RunStatus.RUNNING: MlflowStatus.RUNNING,
    RunStatus.SUCCEEDED: MlflowStatus.FINISHED,
    RunStatus.FAILED: MlflowStatus.FAILED,
    RunStatus.ARCHIVED: MlflowStatus.FINISHED,
}


def _section(metadata: Mapping[str, Any]) -> dict[str, Any]:
    section = metadata.get(KEY)
    return dict(section) if isinstance(section, dict) else {}


def tags_of(entity: Run | Experiment) -> dict[str, str]:
    tags = _section(entity.metadata).get("tags")
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def status_of(run: Run) -> MlflowStatus:
    if run.status == RunStatus.FAILED and _section(run.metadata).get("status") == "KILLED":
        return MlflowStatus.KILLED
    return _MLFLOW_STATUS[run.status]


def lifecycle_of(entity: Run | Experiment) -> str:
    return DELETED if _section(entity.metadata).get("lifecycle_stage") == DELETED else ACTIVE


def params_of(run: Run) -> dict[str, str]:
    """The run's params as MLflow's strings (params set through ETP may be other JSON)."""
    return {k: v if isinstance(v, str) else _json_text(v) for k, v in run.params.items()}


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def initial_metadata(tags: Mapping[str, str]) -> dict[str, Any]:
    return {KEY: {"tags": dict(tags)}} if tags else {}


def derived_tags(tags: Mapping[str, str]) -> list[str]:
    """The ETP tags MLflow's tags give: each `key:value` that is a valid ETP tag."""
    return [tag for k, v in tags.items() if _ETP_TAG.match(tag := f"{k}:{v}")]


def git_sha(tags: Mapping[str, str]) -> str | None:
    commit = tags.get(GIT_COMMIT_TAG, "").lower()
    return commit if _GIT_SHA.match(commit) else None


def run_tags(kept: list[str], tags: Mapping[str, str]) -> list[str]:
    """The run's ETP tags: its own (`kept`) first, then those MLflow's tags give, up to 50."""
    return list(dict.fromkeys([*kept, *derived_tags(tags)]))[:MAX_RUN_TAGS]


def logged(
    run: Run,
    *,
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    deleted_tags: tuple[str, ...] = (),
) -> RunUpdate | None:
    """The patch that logs params and sets (or deletes) tags. A param keeps its first value:
    another one is refused (ParamValueChanged), as MLflow does."""
    fields: dict[str, Any] = {}
    if params:
        current = params_of(run)
        for key, value in params.items():
            if key in current and current[key] != value:
                raise ParamValueChanged(
                    f"Changing param values is not allowed. Param with key='{key}' was already"
                    f" logged with value='{current[key]}' for run ID='{run.id.hex}'. Attempted"
                    f" logging new value '{value}'."
                )
        if any(key not in current for key in params):
            fields["params"] = {**run.params, **params}
    tags = dict(tags or {})
    name = tags.pop(RUN_NAME_TAG, None)
    if name:
        fields["name"] = name[:200]
    if tags or deleted_tags:
        before = tags_of(run)
        after = {k: v for k, v in {**before, **tags}.items() if k not in deleted_tags}
        if after != before:
            own = [tag for tag in run.tags if tag not in set(derived_tags(before))]
            fields["tags"] = run_tags(own, after)
            fields["metadata"] = _with(run.metadata, tags=after)
            sha = git_sha(tags)
            if sha is not None:
                fields["git_sha"] = sha
    return RunUpdate(**fields) if fields else None


def status_change(run: Run, status: MlflowStatus | None, name: str | None) -> RunUpdate | None:
    """The patch of MLflow's update of a run: a new status (the same one changes nothing; ETP's
    status machine decides whether the move is allowed), a new name."""
    fields: dict[str, Any] = {}
    if name:
        fields["name"] = name[:200]
    if status is not None and status != status_of(run):
        target = ETP_STATUS[status]
        if target != run.status:
            fields["status"] = target
        killed = status == MlflowStatus.KILLED
        if killed or _section(run.metadata).get("status") is not None:
            fields["metadata"] = _with(run.metadata, status="KILLED" if killed else None)
    return RunUpdate(**fields) if fields else None


def lifecycle_change(run: Run, stage: str) -> RunUpdate | None:
    if lifecycle_of(run) == stage:
        return None
    lifecycle = stage if stage == DELETED else None
    return RunUpdate(metadata=_with(run.metadata, lifecycle_stage=lifecycle))


def experiment_change(
    experiment: Experiment,
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    deleted_tags: tuple[str, ...] = (),
    stage: str | None = None,
) -> ExperimentUpdate | None:
    """The patch of MLflow's rename, tag changes, deletion and restoring of an experiment."""
    fields: dict[str, Any] = {}
    if name is not None and name != experiment.name:
        fields["name"] = name
    section: dict[str, Any] = {}
    if tags or deleted_tags:
        before = tags_of(experiment)
        after = {k: v for k, v in {**before, **(tags or {})}.items() if k not in deleted_tags}
        if after != before:
            section["tags"] = after
    if stage is not None and lifecycle_of(experiment) != stage:
        section["lifecycle_stage"] = stage if stage == DELETED else None
    if section:
        fields["metadata"] = _with(experiment.metadata, **section)
    return ExperimentUpdate(**fields) if fields else None


def _with(metadata: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """The metadata with MLflow's section changed (a None removes the entry)."""
    section = _section(metadata)
    for key, value in changes.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    return {**metadata, KEY: section}
