"""MLflow's requests (fields MLflow's newer clients send and this door does not know are ignored)
and answers, with MLflow's limits (mlflow.utils.validation), and the ids MLflow sees."""

import math
import uuid
from datetime import datetime
from typing import Annotated, Any, Self

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend_common.auth import CALLER, AccessClaims
from experiment_service.api.mlflow.errors import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    mlflow_error,
)
from experiment_service.domain import mlflow
from experiment_service.domain.metric_models import MetricSummary
from experiment_service.domain.mlflow import MlflowStatus
from experiment_service.domain.models import Experiment, Run

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_EXPERIMENT_TAG_VALUE = 20000
MAX_EXPERIMENT_NAME = 200  # ETP's (MLflow's is 500)
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_RESULTS = 50_000
DEFAULT_RESULTS = 1000

Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY)]
Id = Annotated[str, Field(max_length=100)]
Long = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TagIn(In):
    key: Key
    value: Annotated[str, Field(max_length=MAX_TAG_VALUE)] = ""


class ExperimentTagIn(In):
    key: Key
    value: Annotated[str, Field(max_length=MAX_EXPERIMENT_TAG_VALUE)] = ""


class ParamIn(In):
    key: Key
    value: Annotated[str, Field(max_length=MAX_PARAM_VALUE)] = ""


class MetricIn(In):
    key: Key
    # A double; MLflow's JSON writes NaN and the infinities as strings.
    value: float
    timestamp: Long
    step: Long = 0


class RunRef(In):
    """MLflow's clients send the run's id as `run_id` and, older ones, as `run_uuid`."""

    run_id: Id | None = None
    run_uuid: Id | None = None

    @property
    def id(self) -> uuid.UUID:
        return run_id_of(self.run_id or self.run_uuid or "")


class ExperimentRef(In):
    experiment_id: Id


class ExperimentByName(In):
    experiment_name: Annotated[str, Field(min_length=1, max_length=500)]


class ExperimentCreateIn(In):
    name: Annotated[str, Field(min_length=1, max_length=MAX_EXPERIMENT_NAME)]
    artifact_location: str | None = None
    tags: Annotated[list[ExperimentTagIn], Field(max_length=MAX_PARAMS_TAGS_PER_BATCH)] = []


class ExperimentUpdateIn(ExperimentRef):
    new_name: Annotated[str, Field(min_length=1, max_length=MAX_EXPERIMENT_NAME)] | None = None


class ExperimentTagSet(ExperimentRef):
    key: Key
    value: Annotated[str, Field(max_length=MAX_EXPERIMENT_TAG_VALUE)] = ""


class ExperimentTagDelete(ExperimentRef):
    key: Key


class Search(In):
    max_results: Annotated[int, Field(ge=1, le=MAX_RESULTS)] = DEFAULT_RESULTS
    page_token: Annotated[str, Field(max_length=2000)] | None = None
    filter: Annotated[str, Field(max_length=10_000)] | None = None
    order_by: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=10)] = []


class ExperimentSearchIn(Search):
    view_type: str | int = "ACTIVE_ONLY"


class RunSearchIn(Search):
    experiment_ids: Annotated[list[Id], Field(min_length=1, max_length=100)]
    run_view_type: str | int = "ACTIVE_ONLY"


class RunCreateIn(In):
    experiment_id: Id = "0"
    run_name: Annotated[str, Field(max_length=200)] | None = None
    tags: Annotated[list[TagIn], Field(max_length=MAX_PARAMS_TAGS_PER_BATCH)] = []


class RunUpdateIn(RunRef):
    status: MlflowStatus | None = None
    run_name: Annotated[str, Field(max_length=200)] | None = None


class MetricLog(RunRef, MetricIn):
    pass


class ParamLog(RunRef, ParamIn):
    pass


class TagSet(RunRef, TagIn):
    pass


class TagDelete(RunRef):
    key: Key


class BatchLog(RunRef):
    metrics: Annotated[list[MetricIn], Field(max_length=MAX_METRICS_PER_BATCH)] = []
    params: Annotated[list[ParamIn], Field(max_length=MAX_PARAMS_TAGS_PER_BATCH)] = []
    tags: Annotated[list[TagIn], Field(max_length=MAX_PARAMS_TAGS_PER_BATCH)] = []

    @model_validator(mode="after")
    def _at_most_1000(self) -> Self:
        if len(self.metrics) + len(self.params) + len(self.tags) > MAX_ENTITIES_PER_BATCH:
            raise ValueError(
                f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH}"
                " metrics, params and tags in total."
            )
        return self


class HistoryQuery(RunRef):
    metric_key: Key
    max_results: Annotated[int, Field(ge=1, le=MAX_RESULTS)] | None = None
    page_token: Annotated[str, Field(max_length=2000)] | None = None


class BulkIntervalQuery(In):
    run_ids: Annotated[list[Id], Field(min_length=1, max_length=100)]
    metric_key: Key
    start_step: Long | None = None
    end_step: Long | None = None
    max_results: Annotated[int, Field(ge=1, le=MAX_RESULTS)] = 2500


class LoggedModelSearch(In):
    experiment_ids: Annotated[list[Id], Field(max_length=100)] = []


class ArtifactListQuery(In):
    path: Annotated[str, Field(max_length=2000)] = ""


def key_project(request: web.Request) -> uuid.UUID:
    """The project the caller's API key is bound to: MLflow's experiments live there."""
    claims: AccessClaims = request[CALLER]
    scope = claims.api_key
    if scope is None or scope.project_id is None:
        raise mlflow_error(
            INVALID_PARAMETER_VALUE,
            "The MLflow API of ETP needs an API key bound to a project as MLFLOW_TRACKING_TOKEN:"
            " MLflow's experiments live in the key's project, and this token names none."
            " Make a key with a project_id (POST /api/v1/api-keys).",
        )
    return scope.project_id


def run_id_of(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise mlflow_error(RESOURCE_DOES_NOT_EXIST, f"Run '{text}' not found.") from None


def experiment_id_of(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise mlflow_error(
            RESOURCE_DOES_NOT_EXIST, f"No Experiment with id={text} exists."
        ) from None


def millis(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def number(value: float) -> float | str:
    """A double as MLflow's JSON writes it (NaN and the infinities as strings)."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def artifact_root(run: Run) -> str:
    return f"mlflow-artifacts:/{run.experiment_id.hex}/{run.id.hex}/artifacts"


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": experiment.id.hex,
        "name": experiment.name,
        "artifact_location": f"mlflow-artifacts:/{experiment.id.hex}",
        "lifecycle_stage": mlflow.lifecycle_of(experiment),
        "creation_time": millis(experiment.created_at),
        "last_update_time": millis(experiment.updated_at),
        "tags": [{"key": k, "value": v} for k, v in mlflow.tags_of(experiment).items()],
    }


def run_info_json(run: Run) -> dict[str, Any]:
    tags = mlflow.tags_of(run)
    info: dict[str, Any] = {
        "run_id": run.id.hex,
        "run_uuid": run.id.hex,
        "run_name": run.name,
        "experiment_id": run.experiment_id.hex,
        "user_id": tags.get("mlflow.user", str(run.created_by)),
        "status": mlflow.status_of(run).value,
        "start_time": millis(run.started_at or run.created_at),
        "artifact_uri": artifact_root(run),
        "lifecycle_stage": mlflow.lifecycle_of(run),
    }
    if run.finished_at is not None:
        info["end_time"] = millis(run.finished_at)
    return info


def metric_json(summary: MetricSummary) -> dict[str, Any]:
    return {
        "key": summary.name,
        "value": number(summary.last),
        "timestamp": millis(summary.last_timestamp),
        "step": summary.last_step,
    }


def run_json(run: Run, metrics: list[MetricSummary]) -> dict[str, Any]:
    tags = {**mlflow.tags_of(run), mlflow.RUN_NAME_TAG: run.name}
    return {
        "info": run_info_json(run),
        "data": {
            "metrics": [metric_json(summary) for summary in metrics],
            "params": [{"key": k, "value": v} for k, v in mlflow.params_of(run).items()],
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        },
        "inputs": {},
    }
