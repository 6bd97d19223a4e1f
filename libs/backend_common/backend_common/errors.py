"""RFC 9457 problem+json errors: one middleware renders every failure of every service."""

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
import structlog
from aiohttp import web
from multidict import CIMultiDict

from backend_common.keys import REQUEST_ID

PROBLEM_CONTENT_TYPE = "application/problem+json"

_log = structlog.get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    431: "headers_too_large",
}
_PASSED_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ProblemError(Exception):
    """Raised anywhere in a request to answer with a problem+json response."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers: CIMultiDict[str] = CIMultiDict(headers or {})


class DomainError(Exception):
    """A broken domain rule; each service's `api/errors.py` maps its subclasses to a status and a
    code. Domain code raises these and nothing HTTP.

    `errors`, when set, lists the individual failures (e.g. per field of a batch).
    """

    errors: list[dict[str, Any]] | None = None

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.__class__.__doc__ or self.__class__.__name__)
        self.detail = detail or self.__class__.__doc__


@dataclass(frozen=True)
class Problem:
    """How the API answers one kind of domain error, when a status and a code are not all:
    headers (fixed, like `WWW-Authenticate`, or computed from the exception, like the wait of a
    refused attempt), or per-item `errors` computed from the exception (e.g. a code for each
    failure of a batch)."""

    status: int
    code: str
    headers: Mapping[str, str] | Callable[[Any], Mapping[str, str]] = field(default_factory=dict)
    errors: Callable[[Any], list[dict[str, Any]]] | None = None

    def headers_for(self, exc: Exception) -> Mapping[str, str]:
        return self.headers(exc) if callable(self.headers) else self.headers


ErrorMap = Mapping[type[Exception], tuple[int, str] | Problem]


def problem_response(
    request: web.Request,
    *,
    status: int,
    code: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    body["request_id"] = request.get(REQUEST_ID)
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def find_problem(error_map: ErrorMap, exc: Exception) -> Problem | None:
    """How `error_map` answers `exc` (its class or the nearest mapped base class), if at all."""
    for cls in type(exc).__mro__:
        mapped = error_map.get(cls)
        if isinstance(mapped, Problem):
            return mapped
        if mapped is not None:
            return Problem(*mapped)
    return None


def _exception_detail(exc: web.HTTPException) -> str | None:
    text = exc.text or ""
    # aiohttp's default text is only "<status>: <reason>", which the title already says.
    return None if not text or text.startswith(f"{exc.status}:") else text


def error_middleware(error_map: ErrorMap | None = None) -> Any:
    mapping = dict(error_map or {})

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except ProblemError as exc:
            return problem_response(
                request,
                status=exc.status,
                code=exc.code,
                detail=exc.detail,
                errors=exc.errors,
                headers=exc.headers,
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: exc.headers[k] for k in _PASSED_HEADERS if k in exc.headers}
            return problem_response(
                request,
                status=exc.status,
                code=_HTTP_CODES.get(exc.status, "internal" if exc.status >= 500 else "error"),
                detail=_exception_detail(exc),
                headers=headers,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            problem = find_problem(mapping, exc)
            if problem is not None:
                return problem_response(
                    request,
                    status=problem.status,
                    code=problem.code,
                    detail=getattr(exc, "detail", str(exc)),
                    errors=problem.errors(exc) if problem.errors else getattr(exc, "errors", None),
                    headers=problem.headers_for(exc),
                )
            _log.exception("unhandled_error", path=request.path, method=request.method)
            return problem_response(
                request, status=500, code="internal", detail="An unexpected error occurred."
            )

    return middleware
