from collections.abc import AsyncIterator

from aiohttp import web

from backend_common.app import create_base_app
from backend_common.ratelimit import TokenBuckets
from gateway_service.api import auth, proxy
from gateway_service.appkeys import (
    ALLOWED_ORIGINS,
    API_LIMIT_BY_SESSION,
    GATEWAY_SETTINGS,
    LOGIN_LIMIT_BY_ADDRESS,
    LOGIN_LIMIT_BY_USERNAME,
    REFRESHES,
    UPSTREAM_POOL,
    UPSTREAM_TIMEOUT,
    UPSTREAMS,
)
from gateway_service.proxy import Upstreams
from gateway_service.security import cors_middleware, response_headers
from gateway_service.settings import GatewaySettings
from gateway_service.upstream import Refreshes, upstream_timeout
from gateway_service.upstream_http import Origin, UpstreamPool


def create_app(settings: GatewaySettings) -> web.Application:
    app = create_base_app(settings, extra_middlewares=(cors_middleware,))
    app.on_response_prepare.append(response_headers)
    app[GATEWAY_SETTINGS] = settings
    app[UPSTREAM_TIMEOUT] = upstream_timeout(settings)
    app[ALLOWED_ORIGINS] = frozenset(origin.rstrip("/") for origin in settings.allowed_origins)
    app[UPSTREAMS] = Upstreams(
        auth=Origin.from_url(settings.auth_url),
        experiment=Origin.from_url(settings.experiment_url),
        telemetry=Origin.from_url(settings.telemetry_url),
    )
    app.cleanup_ctx.append(_limits_ctx)
    app.cleanup_ctx.append(_upstream_pool_ctx)
    app.router.add_routes(auth.routes)
    proxy.add_proxy_routes(app)
    if settings.static_dir is not None:
        proxy.add_static_routes(app, settings.static_dir)
    return app


async def _limits_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[GATEWAY_SETTINGS]
    app[LOGIN_LIMIT_BY_ADDRESS] = TokenBuckets(
        rate=settings.login_rate_per_address, burst=settings.login_burst_per_address
    )
    app[LOGIN_LIMIT_BY_USERNAME] = TokenBuckets(
        rate=settings.login_rate_per_username, burst=settings.login_burst_per_username
    )
    app[API_LIMIT_BY_SESSION] = TokenBuckets(
        rate=settings.api_rate_per_session, burst=settings.api_burst_per_session
    )
    app[REFRESHES] = Refreshes()
    yield


async def _upstream_pool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[GATEWAY_SETTINGS]
    app[UPSTREAM_POOL] = pool = UpstreamPool(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
    )
    try:
        yield
    finally:
        pool.close()
