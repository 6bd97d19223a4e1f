import logging
import random
import re
import time
from typing import Any

import structlog
from aiohttp import web

from backend_common.keys import REQUEST_ID
from backend_common.logging import log_access

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_PROBES = frozenset({"/health", "/ready"})


def incoming_request_id(request: web.Request) -> str:
    candidate = request.headers.get(REQUEST_ID_HEADER, "")
    # fullmatch: with match and `$`, a trailing newline would pass and be echoed into a header.
    if _SANE_REQUEST_ID.fullmatch(candidate):
        return candidate
    # 128 random bits as 32 hex digits, like a uuid4's hex but without a system call for each
    # request: an id only has to be unique, not unguessable (`random` reseeds in forked workers).
    return f"{random.getrandbits(128):032x}"


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: the header also reaches streamed and error responses."""
    request_id = request.get(REQUEST_ID)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id


@web.middleware
async def request_context_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every request gets an id (the caller's X-Request-Id when sane), bound to the log lines
    written while it runs, and one access line once it is answered."""
    started = time.perf_counter()
    request_id = incoming_request_id(request)
    request[REQUEST_ID] = request_id
    tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
        log_access(
            logging.DEBUG if request.path in _PROBES else logging.INFO,
            method=request.method,
            path=request.path,
            status=response.status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            remote=request.remote,
        )
        return response
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
