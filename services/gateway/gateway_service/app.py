from collections.abc import AsyncIterator, Callable

from aiohttp import web

from backend_common.app import create_base_app
from backend_common.keys import HTTP_CLIENT
from backend_common.ratelimit import TokenBuckets
from gateway_service.api import auth, docs, proxy
from gateway_service.appkeys import (
    API_LIMIT_BY_SESSION,
    AUTH,
    FORWARDER,
    LOGIN_LIMIT_BY_ADDRESS,
    LOGIN_LIMIT_BY_USERNAME,
    ORIGINS,
    SESSIONS,
)
from gateway_service.browser.cookies import SessionCookies
from gateway_service.browser.security import Origins, cors_middleware, response_headers
from gateway_service.browser.session import Sessions
from gateway_service.settings import GatewaySettings
from gateway_service.upstream.auth import AuthClient
from gateway_service.upstream.forward import Forwarder, Upstreams
from gateway_service.upstream.pool import Origin, UpstreamPool

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def create_app(settings: GatewaySettings) -> web.Application:
    origins = Origins(settings.own_origin(), settings.allowed_origins)
    app = create_base_app(settings, extra_middlewares=(cors_middleware(origins),))
    app.on_response_prepare.append(response_headers(origins))
    app[ORIGINS] = origins
    app.cleanup_ctx.append(_limits_ctx(settings))
    app.cleanup_ctx.append(_auth_ctx(settings))
    # Built here, not at start-up: a service URL that is not one fails create_app.
    upstreams = Upstreams(
        auth=Origin.from_url(settings.auth_url),
        experiment=Origin.from_url(settings.experiment_url),
        telemetry=Origin.from_url(settings.telemetry_url),
    )
    app.cleanup_ctx.append(_forwarder_ctx(settings, upstreams))
    app.router.add_routes(auth.routes)
    app.router.add_routes(docs.routes)
    proxy.add_proxy_routes(app)
    if settings.static_dir is not None:
        proxy.add_static_routes(app, settings.static_dir)
    return app


def _limits_ctx(settings: GatewaySettings) -> CleanupContext:
    async def limits(app: web.Application) -> AsyncIterator[None]:
        app[LOGIN_LIMIT_BY_ADDRESS] = TokenBuckets(
            rate=settings.login_rate_per_address,
            burst=settings.login_burst_per_address,
            name="gateway_login_address",
        )
        app[LOGIN_LIMIT_BY_USERNAME] = TokenBuckets(
            rate=settings.login_rate_per_username,
            burst=settings.login_burst_per_username,
            name="gateway_login_name",
        )
        app[API_LIMIT_BY_SESSION] = TokenBuckets(
            rate=settings.api_rate_per_session,
            burst=settings.api_burst_per_session,
            name="gateway_api_session",
        )
        yield

    return limits


def _auth_ctx(settings: GatewaySettings) -> CleanupContext:
    """The auth service's client (on the shared HTTP client, made by an earlier context) and
    the sessions that refresh through it."""

    async def auth_client(app: web.Application) -> AsyncIterator[None]:
        app[AUTH] = client = AuthClient(
            app[HTTP_CLIENT],
            settings.auth_url,
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_read_timeout,
        )
        cookies = SessionCookies(
            secure=settings.cookie_secure, refresh_max_age=settings.refresh_cookie_max_age
        )
        app[SESSIONS] = Sessions(client, cookies)
        yield

    return auth_client


def _forwarder_ctx(settings: GatewaySettings, upstreams: Upstreams) -> CleanupContext:
    async def forwarder(app: web.Application) -> AsyncIterator[None]:
        pool = UpstreamPool(
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_read_timeout,
            body_timeout=settings.client_body_timeout,
            max_in_use=settings.upstream_max_connections,
            queue_timeout=settings.upstream_queue_timeout,
        )
        app[FORWARDER] = Forwarder(
            pool,
            upstreams,
            own_origin=settings.own_origin(),
            traced=settings.tracing_exporter != "off",
        )
        try:
            yield
        finally:
            pool.close()

    return forwarder
