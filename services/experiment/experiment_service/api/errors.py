"""How the experiment API answers each domain error: a status and a code, or a Problem."""

from typing import Any

from backend_common.batches import BatchInvalid
from backend_common.errors import DomainError, ErrorMap, Problem, find_problem
from backend_common.export_budget import EXPORT_ERRORS
from backend_common.pagination import PAGINATION_ERRORS
from backend_common.ratelimit import rate_limit_headers
from backend_common.rbac import RBAC_ERRORS
from experiment_service.domain.errors import (
    ArtifactNotFound,
    ArtifactQuotaExceeded,
    ArtifactTooLarge,
    BackfillNotFound,
    BatchFailed,
    CaptureAlreadyRunning,
    CaptureNotDeletable,
    CaptureNotRunning,
    CaptureSessionNotFound,
    ConversionProfileNotFound,
    DeliveryInProgress,
    ExperimentArchived,
    ExperimentHasRunningRuns,
    ExperimentNotFound,
    HomeProjectNotRemovable,
    InvalidTransition,
    JobNotFound,
    MetricNotFound,
    NotAnOperator,
    OverlayTooLarge,
    ParamValueChanged,
    PingRateLimited,
    ProfileNotInFuture,
    ProfileNotInPast,
    ProfileStartTaken,
    ProfileVersionTaken,
    RetentionOutOfOrder,
    RunArchived,
    RunHasActiveCapture,
    RunLimit,
    RunNotFound,
    RunNotRunning,
    RunsInSeveralProjects,
    SensorAlreadyBound,
    SensorAlreadyInProject,
    SensorBoundInProject,
    SensorInActiveCapture,
    SensorLimit,
    SensorNotBound,
    SensorNotFound,
    SensorNotInProject,
    SensorProjectLimit,
    SensorProjectNotFound,
    StorageFull,
    StorageUnavailable,
    TooManyMetricPoints,
    UploadKeyReused,
    WebhookDeliveryNotFound,
    WebhookFanOutLimit,
    WebhookInactive,
    WebhookLimit,
    WebhookNotFound,
    WebhookTargetRefused,
)


def _batch_failures(exc: BatchFailed) -> list[dict[str, Any]]:
    """Each item that cannot take the change, with the code its own request would get."""
    return [
        {f"{exc.item}_id": str(item_id), "code": _code(error), "detail": str(error.detail)}
        for item_id, error in exc.failures
    ]


def _code(error: DomainError) -> str:
    problem = find_problem({**RBAC_ERRORS, **PAGINATION_ERRORS, **ERROR_MAP}, error)
    return "conflict" if problem is None else problem.code


ERROR_MAP: ErrorMap = {
    **EXPORT_ERRORS,
    ExperimentNotFound: (404, "experiment_not_found"),
    RunNotFound: (404, "run_not_found"),
    CaptureSessionNotFound: (404, "capture_session_not_found"),
    InvalidTransition: (409, "invalid_transition"),
    ExperimentHasRunningRuns: (409, "experiment_has_running_runs"),
    ExperimentArchived: (409, "experiment_archived"),
    RunArchived: (409, "run_archived"),
    RunHasActiveCapture: (409, "run_has_active_capture"),
    RunNotRunning: (409, "run_not_running"),
    CaptureAlreadyRunning: (409, "capture_already_running"),
    CaptureNotRunning: (409, "capture_not_running"),
    CaptureNotDeletable: (409, "capture_not_deletable"),
    BatchFailed: Problem(409, "batch_failed", errors=_batch_failures),
    SensorNotFound: (404, "sensor_not_found"),
    ConversionProfileNotFound: (404, "conversion_profile_not_found"),
    SensorProjectNotFound: (404, "sensor_project_not_found"),
    SensorProjectLimit: (409, "sensor_project_limit"),
    SensorInActiveCapture: (409, "sensor_in_active_capture"),
    HomeProjectNotRemovable: (409, "home_project_not_removable"),
    SensorAlreadyInProject: (409, "sensor_already_in_project"),
    SensorNotInProject: (409, "sensor_not_in_project"),
    SensorBoundInProject: (409, "sensor_bound_in_project"),
    SensorAlreadyBound: (409, "sensor_already_bound"),
    SensorNotBound: (404, "sensor_not_bound"),
    ProfileVersionTaken: (409, "profile_version_taken"),
    ProfileStartTaken: (409, "profile_start_taken"),
    ProfileNotInFuture: (422, "valid_from_not_in_future"),
    ProfileNotInPast: (422, "valid_from_not_in_past"),
    BackfillNotFound: (404, "backfill_not_found"),
    WebhookNotFound: (404, "webhook_not_found"),
    WebhookDeliveryNotFound: (404, "webhook_delivery_not_found"),
    WebhookLimit: (409, "webhook_limit"),
    SensorLimit: (409, "sensor_limit"),
    RunLimit: (409, "run_limit"),
    RunsInSeveralProjects: (422, "runs_in_several_projects"),
    OverlayTooLarge: (422, "too_many_points"),
    WebhookFanOutLimit: (422, "webhook_fanout_limit"),
    WebhookInactive: (409, "webhook_inactive"),
    DeliveryInProgress: (409, "delivery_in_progress"),
    WebhookTargetRefused: (422, "webhook_target_refused"),
    ArtifactNotFound: (404, "artifact_not_found"),
    ArtifactTooLarge: (413, "artifact_too_large"),
    ArtifactQuotaExceeded: (507, "artifact_quota_exceeded"),
    StorageFull: (507, "storage_full"),
    StorageUnavailable: Problem(503, "storage_unavailable", headers={"Retry-After": "5"}),
    UploadKeyReused: (422, "idempotency_key_reused"),
    BatchInvalid: (422, "validation_failed"),
    MetricNotFound: (404, "metric_not_found"),
    ParamValueChanged: (400, "param_value_changed"),
    TooManyMetricPoints: (422, "too_many_points"),
    NotAnOperator: (403, "operator_only"),
    JobNotFound: (404, "job_not_found"),
    RetentionOutOfOrder: (422, "retention_out_of_order"),
    PingRateLimited: Problem(
        429, "too_many_requests", headers=lambda exc: rate_limit_headers(exc.decision)
    ),
}
