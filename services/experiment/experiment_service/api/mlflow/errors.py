"""MLflow's error shape on the MLflow door: `{"error_code": ..., "message": ...}` with MLflow's
codes and statuses, instead of problem+json.

Every failure of these routes is first rendered by the shared error middleware (domain errors,
bad bodies, refused tokens alike), so this one outer middleware only translates those answers:
a code that is already MLflow's (raised here with `mlflow_error`) is kept, any other is chosen
by the status. MLflow's client retries 500, 503 and 429 for minutes, so a refused change of
state is a 409 RESOURCE_CONFLICT, never MLflow's INVALID_STATE (a 500)."""

from typing import Any

import orjson
from aiohttp import web

from backend_common.errors import PROBLEM_CONTENT_TYPE, ProblemError

PREFIXES = ("/api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/", "/api/3.0/mlflow/")

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"

# MLflow's codes and the statuses its server answers them with (mlflow.exceptions).
STATUSES = {
    INVALID_PARAMETER_VALUE: 400,
    "BAD_REQUEST": 400,
    RESOURCE_ALREADY_EXISTS: 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    RESOURCE_DOES_NOT_EXIST: 404,
    ENDPOINT_NOT_FOUND: 404,
    "RESOURCE_CONFLICT": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
}
_BY_STATUS = {
    400: INVALID_PARAMETER_VALUE,
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: RESOURCE_DOES_NOT_EXIST,
    405: ENDPOINT_NOT_FOUND,
    409: "RESOURCE_CONFLICT",
    413: INVALID_PARAMETER_VALUE,
    415: INVALID_PARAMETER_VALUE,
    422: INVALID_PARAMETER_VALUE,
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
    507: "RESOURCE_EXHAUSTED",
}
# Kept as they are: 405 with its Allow header; 507, as MLflow's own status for
# RESOURCE_EXHAUSTED (429) would have its client retry a full quota for minutes.
_KEPT_STATUSES = frozenset({405, 507})
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def mlflow_error(code: str, message: str) -> ProblemError:
    """An error of the MLflow door with MLflow's own code (raise it)."""
    return ProblemError(STATUSES[code], code, message)


def _translated(request: web.Request, response: web.Response) -> web.Response:
    try:
        problem: dict[str, Any] = orjson.loads(response.body)  # type: ignore[arg-type]
    except (orjson.JSONDecodeError, TypeError):
        problem = {}
    code = str(problem.get("code", ""))
    status = response.status
    if code in STATUSES:
        error_code = code
    elif request.match_info.http_exception is not None:  # no such route
        error_code = ENDPOINT_NOT_FOUND
    else:
        error_code = _BY_STATUS.get(status, "INTERNAL_ERROR")
    if code in STATUSES or (status in _BY_STATUS and status not in _KEPT_STATUSES):
        status = STATUSES[error_code]
    message = str(problem.get("detail") or problem.get("title") or error_code)
    for error in problem.get("errors") or []:
        if isinstance(error, dict) and "field" in error:
            message += f" {error['field']}: {error.get('message', '')}."
    body = {"error_code": error_code, "message": message}
    headers = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


@web.middleware
async def mlflow_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Outside the shared error middleware: MLflow's shape for the MLflow door's errors."""
    response = await handler(request)
    if (
        request.path.startswith(PREFIXES)
        and isinstance(response, web.Response)
        and response.content_type == PROBLEM_CONTENT_TYPE
    ):
        return _translated(request, response)
    return response
