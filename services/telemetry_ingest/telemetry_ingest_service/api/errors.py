"""How the telemetry API answers each domain error (the shared RBAC and pagination maps are
added by create_base_app)."""

from backend_common.batches import BatchInvalid
from backend_common.errors import DomainError, ErrorMap, Problem, ProblemError, find_problem
from backend_common.export_budget import EXPORT_ERRORS
from telemetry_ingest_service.domain.batch import UndeclaredChannel
from telemetry_ingest_service.domain.errors import (
    CaptureSessionArchived,
    CaptureSessionMismatch,
    CaptureSessionNotFound,
    InvalidToken,
    NoRange,
    NotStored,
    RawValuesHidden,
    RunArchived,
    RunNotFound,
    SensorNotBound,
    SensorNotFound,
    TokenCheckUnavailable,
    TokenSensorMismatch,
    TooManyBuckets,
    TooManyPoints,
    TooManyReadings,
)

ERRORS: ErrorMap = {
    # The read side.
    SensorNotFound: (404, "sensor_not_found"),
    RunNotFound: (404, "run_not_found"),
    CaptureSessionNotFound: (404, "capture_session_not_found"),
    RawValuesHidden: (403, "raw_values_hidden"),
    TooManyBuckets: (422, "too_many_buckets"),
    TooManyPoints: (422, "too_many_points"),
    TooManyReadings: (422, "too_many_readings"),
    NoRange: (422, "no_range"),
    **EXPORT_ERRORS,
    # The ingest path.
    InvalidToken: Problem(
        401, "invalid_token", headers={"WWW-Authenticate": 'Bearer realm="sensors"'}
    ),
    TokenCheckUnavailable: Problem(503, "database_unavailable", headers={"Retry-After": "5"}),
    TokenSensorMismatch: (403, "token_sensor_mismatch"),
    BatchInvalid: (422, "validation_failed"),
    UndeclaredChannel: (422, "undeclared_channel"),
    NotStored: Problem(503, "spool_full", headers={"Retry-After": "10"}),
    SensorNotBound: (409, "sensor_not_bound"),
    CaptureSessionMismatch: (409, "capture_session_mismatch"),
    RunArchived: (409, "run_archived"),
    CaptureSessionArchived: (409, "capture_session_archived"),
}


def problem_of(exc: DomainError) -> ProblemError | None:
    """The answer to `exc` as a ProblemError (to add headers to, or to journal), if mapped."""
    problem = find_problem(ERRORS, exc)
    if problem is None:
        return None
    return ProblemError(
        problem.status,
        problem.code,
        exc.detail,
        errors=problem.errors(exc) if problem.errors else exc.errors,
        headers=problem.headers_for(exc),
    )
