import re
import time
import uuid
from typing import Any

import structlog
from aiohttp import web

from backend_common.keys import REQUEST_ID

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_access_log = structlog.get_logger("access")
_PROBES = frozenset({"/health", "/ready"})


def incoming_request_id(request: web.Request) -> str:
    candidate = request.headers.get(REQUEST_ID_HEADER, "")
    # fullmatch: with match and `$`, a trailing newline would pass and be echoed into a header.
    return candidate if _SANE_REQUEST_ID.fullmatch(candidate) else uuid.uuid4().hex


@web.middleware
async def request_id_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    request_id = incoming_request_id(request)
    request[REQUEST_ID] = request_id
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        return await handler(request)


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: the header also reaches streamed and error responses."""
    request_id = request.get(REQUEST_ID)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id


@web.middleware
async def access_log_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    log = _access_log.debug if request.path in _PROBES else _access_log.info
    log(
        "request",
        method=request.method,
        path=request.path,
        status=response.status,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        remote=request.remote,
    )
    return response
