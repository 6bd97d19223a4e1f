"""Forwarding /api/* to the services, bodies streamed both ways (SSE included)."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from opentelemetry import propagate

from backend_common.errors import ProblemError
from backend_common.keys import REQUEST_ID
from backend_common.middlewares import REQUEST_ID_HEADER
from gateway_service.settings import normalized_origin
from gateway_service.upstream.pool import (
    Answer,
    ClientBodyTimeout,
    Origin,
    UpstreamBusy,
    UpstreamError,
    UpstreamPool,
    UpstreamTimeout,
)

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
# Replaced by the gateway's own (Host, the body's framing, X-Request-Id, X-Forwarded-*) or never
# sent on: Cookie (the token goes as Authorization), Expect (the gateway answers 100-continue).
_NOT_FORWARDED = HOP_BY_HOP | {
    "host",
    "cookie",
    "content-length",
    "expect",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
}
_NOT_RETURNED = HOP_BY_HOP | {"set-cookie", "server", "date", "content-length"}
# Answers of a known length up to this size are read whole and go out in one write with their
# headers; a streamed answer's headers take a write (a system call) of their own.
_ONE_WRITE_MAX = 64 * 1024


@dataclass(frozen=True)
class Upstreams:
    auth: Origin
    experiment: Origin
    telemetry: Origin


def upstream_for(path: str, upstreams: Upstreams) -> Origin:
    """The service that owns `path`: the auth service owns /api/v1/auth, /api/v1/projects,
    /api/v1/users and /api/v1/api-keys, the ingest service /api/v1/telemetry, the experiment
    service the rest (MLflow's /api/2.0/mlflow/ and /api/2.0/mlflow-artifacts/ included: its
    MLflow door)."""
    if path.startswith(("/api/v1/auth/", "/api/v1/projects", "/api/v1/users", "/api/v1/api-keys")):
        return upstreams.auth
    if path.startswith("/api/v1/telemetry"):
        return upstreams.telemetry
    return upstreams.experiment


def origin_form(target: str, own_origin: str) -> str:
    """The path and query of an absolute-form request target (`http://host/path?query`, RFC
    9112 §3.2.2), as written; a target naming another origin than the gateway's is refused."""
    try:
        parts = urlsplit(target)
        ours = normalized_origin(f"{parts.scheme}://{parts.netloc}") == own_origin
    except ValueError:
        ours = False
    if not ours:
        raise ProblemError(400, "foreign_target", "The request target names another origin.")
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _named_in_connection(values: Iterable[str]) -> frozenset[str]:
    """The fields the Connection header `values` declare hop-by-hop, never passed on either."""
    return frozenset(token.strip().lower() for value in values for token in value.split(","))


def outgoing_headers(
    request: web.Request, access_token: str | None, *, traced: bool
) -> list[tuple[str, str]]:
    """The client's headers but the hop-by-hop ones, with the session's token, the request id,
    X-Forwarded-* and, when tracing, the gateway's span as the service's parent."""
    replaced: dict[str, str] = {}
    if traced:
        propagate.inject(replaced)  # traceparent (and tracestate) of the current span
    if access_token is not None:
        replaced["Authorization"] = f"Bearer {access_token}"
    dropped = _NOT_FORWARDED
    if "Connection" in request.headers:
        dropped = dropped | _named_in_connection(request.headers.getall("Connection"))
    if replaced:
        dropped = dropped | {name.lower() for name in replaced}
    headers = [
        (name, value) for name, value in request.headers.items() if name.lower() not in dropped
    ]
    headers += replaced.items()
    headers += [
        (REQUEST_ID_HEADER, request[REQUEST_ID]),
        ("X-Forwarded-For", forwarded_for(request)),
        ("X-Forwarded-Proto", request.scheme),
        ("X-Forwarded-Host", request.host),
    ]
    return headers


def forwarded_for(request: web.Request) -> str:
    """The client's X-Forwarded-For with the client's address appended (services believe it
    only from proxies they trust)."""
    earlier = request.headers.get("X-Forwarded-For")
    remote = request.remote or "unknown"
    return f"{earlier}, {remote}" if earlier else remote


def hop_by_hop_removed(
    headers: list[tuple[str, str]], dropped: frozenset[str] = HOP_BY_HOP
) -> list[tuple[str, str]]:
    """`headers` in their order without the `dropped` ones (lower case) and those that a
    Connection header names."""
    connection = [value for name, value in headers if name.lower() == "connection"]
    if connection:
        dropped = dropped | _named_in_connection(connection)
    return [(name, value) for name, value in headers if name.lower() not in dropped]


def _copy_answer_headers(answer: Answer, response: web.StreamResponse) -> None:
    for name, value in hop_by_hop_removed(answer.headers, _NOT_RETURNED):
        response.headers.add(name, value)


class Forwarder:
    """Forwards requests to the service that owns their path, over `pool`; `traced`: the
    gateway's span goes along as the service's parent."""

    def __init__(
        self, pool: UpstreamPool, upstreams: Upstreams, *, own_origin: str, traced: bool
    ) -> None:
        self._pool = pool
        self._upstreams = upstreams
        self._own_origin = own_origin
        self._traced = traced

    async def forward(
        self,
        request: web.Request,
        *,
        access_token: str | None,
        before_prepare: Callable[[web.StreamResponse], None],
    ) -> web.StreamResponse:
        """Sends the request on and streams the answer back as it arrives (small answers of
        known length whole); `before_prepare` may still change the answer's headers (e.g.
        renewed session cookies). The path and query go on as the client wrote them: decoding
        would turn %2F into a new segment and %3F into a query, and resolving `..` could leave
        the service's base path. An absolute-form target goes on as its path and query."""
        target = request.raw_path
        if not target.startswith("/"):
            target = origin_form(target, self._own_origin)
        try:
            answer = await self._pool.request(
                upstream_for(request.path, self._upstreams),
                request.method,
                target,
                outgoing_headers(request, access_token, traced=self._traced),
                request.content if request.body_exists else None,
                request.content_length,
            )
        except ClientBodyTimeout:
            raise ProblemError(
                408, "request_timeout", "The request's body did not arrive in time."
            ) from None
        except UpstreamBusy:
            raise ProblemError(
                503,
                "upstream_busy",
                "The service has too many requests in progress; try again shortly.",
                headers={"Retry-After": "1"},
            ) from None
        except UpstreamTimeout:
            raise ProblemError(
                504, "upstream_timeout", "The service did not answer in time."
            ) from None
        except UpstreamError:
            raise ProblemError(
                502, "upstream_unavailable", "The service cannot be reached."
            ) from None
        try:
            return await _answer(request, answer, before_prepare)
        finally:
            answer.release()


async def _answer(
    request: web.Request, answer: Answer, before_prepare: Callable[[web.StreamResponse], None]
) -> web.StreamResponse:
    length = answer.content_length
    if length is not None and length <= _ONE_WRITE_MAX and request.method != "HEAD":
        try:
            content = await answer.read()
        except UpstreamTimeout:
            raise ProblemError(
                504, "upstream_timeout", "The service did not answer in time."
            ) from None
        except UpstreamError:
            raise ProblemError(
                502, "upstream_unavailable", "The service broke off its answer."
            ) from None
        whole = web.Response(status=answer.status, reason=answer.reason, body=content)
        _copy_answer_headers(answer, whole)
        before_prepare(whole)
        return whole
    response = web.StreamResponse(status=answer.status, reason=answer.reason)
    _copy_answer_headers(answer, response)
    if length is not None:
        response.content_length = length
    before_prepare(response)
    await response.prepare(request)
    try:
        async for chunk in answer.iter_chunks():
            await response.write(chunk)
        await response.write_eof()
    except UpstreamError:
        # The headers are gone already: all that is left is to cut the connection short.
        if request.transport is not None:
            request.transport.close()
    except ConnectionResetError:
        return response  # the client left (a browser closing a live page): nobody to answer
    return response
