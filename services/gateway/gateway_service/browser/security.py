"""CORS for the allow-listed origins, CSRF checks on cookie sessions, and security headers."""

from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from backend_common.errors import ProblemError
from gateway_service.browser.cookies import CSRF_HEADER, csrf_token_matches, has_session

PrepareHook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CORS_ALLOW_HEADERS = (
    "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-CSRF-Token, X-Request-Id"
)
CORS_EXPOSE_HEADERS = "Idempotent-Replayed, Location, Retry-After, X-Request-Id"
CORS_ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# The API reference (Redoc) puts its styles inline and runs its search in a worker made from a
# blob: URL; it loads nothing from another origin.
REFERENCE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
# A page of the gateway's own that needs another policy than PAGE_CSP says so here.
PAGE_POLICY = web.RequestKey("page_policy", str)


def _request_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return origin
    referer = request.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


def _is_preflight(request: web.Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


class Origins:
    """The origins whose pages may call the gateway with the browser's cookies: its own, as
    configured (`own`, never taken from the request's Host, which the client writes), and
    `allowed` (written with or without a trailing slash)."""

    def __init__(self, own: str, allowed: Iterable[str]) -> None:
        self.own = own
        self.allowed = frozenset(origin.rstrip("/") for origin in allowed)

    def allow(self, origin: str) -> bool:
        return origin == self.own or origin in self.allowed

    def check_csrf(self, request: web.Request) -> None:
        """Unsafe requests that ride on the session cookies need the double-submit token and an
        allowed Origin (or Referer). Bearer clients send no cookies and are not subject to it."""
        if request.method not in UNSAFE_METHODS or "Authorization" in request.headers:
            return
        if not has_session(request):
            return
        origin = _request_origin(request)
        if origin is None or not self.allow(origin):
            raise ProblemError(403, "csrf_origin", "The request's Origin is not allowed.")
        if not csrf_token_matches(request):
            raise ProblemError(
                403,
                "csrf_token",
                f"Send the csrf_token cookie's value in the {CSRF_HEADER} header.",
            )

    def check_login(self, request: web.Request) -> None:
        """Login from a browser page of another site is refused (login CSRF); clients that send
        no Origin (curl, SDKs) may log in."""
        origin = _request_origin(request)
        if origin is not None and not self.allow(origin):
            raise ProblemError(403, "csrf_origin", "The request's Origin is not allowed.")


def cors_middleware(origins: Origins) -> Middleware:
    """Answers preflights itself; `response_headers` marks the other answers."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        if origin and origin != origins.own and _is_preflight(request):
            if not origins.allow(origin):
                raise ProblemError(403, "origin_not_allowed", f"Origin {origin} is not allowed.")
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Credentials": "true",
                    "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
                    "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        return await handler(request)

    return cors


def response_headers(origins: Origins) -> PrepareHook:
    """An on_response_prepare hook, not after the handler: proxied answers are streamed (their
    headers are sent before the handler returns) and error answers are made outside the
    middlewares."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        _security_headers(request, response)
        _cors_headers(request, response, origins)

    return on_prepare


def _cors_headers(request: web.Request, response: web.StreamResponse, origins: Origins) -> None:
    origin = request.headers.get("Origin", "")
    if not origin or origin == origins.own or _is_preflight(request):
        return
    if origins.allow(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        response.headers.add("Vary", "Origin")


def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, and a CSP on the pages the gateway serves."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Server"] = "etp-gateway"
    # The header as it is: `response.content_type` parses it on every call.
    if response.headers.get("Content-Type", "").startswith("text/html"):
        response.headers["Content-Security-Policy"] = request.get(PAGE_POLICY, PAGE_CSP)
    if request.secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
