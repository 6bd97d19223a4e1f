"""Forwarding /api/* to the services, bodies streamed both ways (SSE included)."""

from collections.abc import Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from backend_common.errors import ProblemError
from backend_common.keys import REQUEST_ID
from backend_common.middlewares import REQUEST_ID_HEADER

# RFC 9110 §7.6.1 connection-specific fields, never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | {"host", "cookie", "content-length"}
_NOT_RETURNED = HOP_BY_HOP | {"set-cookie", "server", "date", "content-length"}
# Answers of a known length up to this size are read whole and go out in one write with their
# headers; a streamed answer's headers take a write (a system call) of their own.
_ONE_WRITE_MAX = 64 * 1024


def upstream_for(path: str, *, auth: str, experiment: str, telemetry: str) -> str:
    """DESIGN.md routing: auth, projects and users to auth; telemetry to ingest; the rest to
    the experiment service."""
    if path.startswith(("/api/v1/auth/", "/api/v1/projects", "/api/v1/users")):
        return auth
    if path.startswith("/api/v1/telemetry"):
        return telemetry
    return experiment


def _named_in_connection(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """The fields a Connection header declares hop-by-hop, never forwarded either."""
    return frozenset(
        token.strip().lower()
        for value in headers.getall("Connection", ())
        for token in value.split(",")
    )


def outgoing_headers(request: web.Request, access_token: str | None) -> CIMultiDict[str]:
    dropped = _NOT_FORWARDED | _named_in_connection(request.headers)
    headers = CIMultiDict(
        (name, value) for name, value in request.headers.items() if name.lower() not in dropped
    )
    if access_token is not None:
        headers["Authorization"] = f"Bearer {access_token}"
    headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
    forwarded_for = request.headers.get("X-Forwarded-For")
    remote = request.remote or "unknown"
    headers["X-Forwarded-For"] = f"{forwarded_for}, {remote}" if forwarded_for else remote
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.host
    return headers


def _copy_answer_headers(upstream: aiohttp.ClientResponse, response: web.StreamResponse) -> None:
    dropped = _NOT_RETURNED | _named_in_connection(upstream.headers)
    for name, value in upstream.headers.items():
        if name.lower() not in dropped:
            response.headers.add(name, value)


async def forward(
    request: web.Request,
    session: aiohttp.ClientSession,
    url: URL,
    *,
    access_token: str | None,
    client_timeout: aiohttp.ClientTimeout,
    before_prepare: Callable[[web.StreamResponse], None],
) -> web.StreamResponse:
    """Sends the request on and streams the answer back as it arrives (small answers of known
    length whole); `before_prepare` may still change the answer's headers (e.g. renewed session
    cookies)."""
    body = request.content if request.body_exists else None
    try:
        upstream = await session.request(
            request.method,
            url,
            headers=outgoing_headers(request, access_token),
            data=body,
            timeout=client_timeout,
            allow_redirects=False,
            auto_decompress=False,
        )
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise ProblemError(504, "upstream_timeout", "The service did not answer in time.") from None
    except aiohttp.ClientError:
        raise ProblemError(502, "upstream_unavailable", "The service cannot be reached.") from None
    async with upstream:
        length = upstream.content_length
        if length is not None and length <= _ONE_WRITE_MAX and request.method != "HEAD":
            try:
                content = await upstream.read()
            except (TimeoutError, aiohttp.ServerTimeoutError):
                raise ProblemError(
                    504, "upstream_timeout", "The service did not answer in time."
                ) from None
            except aiohttp.ClientError:
                raise ProblemError(
                    502, "upstream_unavailable", "The service broke off its answer."
                ) from None
            whole = web.Response(status=upstream.status, reason=upstream.reason, body=content)
            _copy_answer_headers(upstream, whole)
            before_prepare(whole)
            return whole
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        _copy_answer_headers(upstream, response)
        if length is not None:
            response.content_length = length
        before_prepare(response)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ServerTimeoutError):
            # The headers are gone already: all that is left is to cut the connection short.
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
    return response
