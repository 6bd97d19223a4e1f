"""The part of every service's `create_app` that is the same everywhere."""

from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
import structlog
from aiohttp import web

from backend_common import health, metrics, openapi, tracing
from backend_common.api_keys import AuthServiceKeys
from backend_common.auth import (
    API_KEY_VERIFIER,
    TOKEN_VERIFIER,
    TokenVerifier,
    auth_middleware,
    jwks_from_url,
)
from backend_common.db import Database, create_pool
from backend_common.errors import ErrorMap, error_middleware
from backend_common.keys import DATABASE, HTTP_CLIENT, SETTINGS
from backend_common.middlewares import echo_request_id, request_context_middleware
from backend_common.migrations import migrate
from backend_common.pagination import PAGINATION_ERRORS
from backend_common.rbac import RBAC_ERRORS, ROLES, AuthServiceRoles, RoleSource
from backend_common.settings import (
    AuthClientSettings,
    DatabaseSettings,
    ServiceSettings,
    mask_dsn,
)

_log = structlog.get_logger(__name__)


def create_base_app(
    settings: ServiceSettings,
    *,
    error_map: ErrorMap | None = None,
    extra_middlewares: tuple[Callable, ...] = (),
    outer_middlewares: tuple[Callable, ...] = (),
    public_routes: Iterable[str] = (),
    roles: RoleSource | None = None,
) -> web.Application:
    """An app with the shared middlewares (request metrics by route name among them), /health,
    /ready, /openapi.yaml, HTTP client and pool. Its /metrics is served on a port of its own by
    the runner (backend_common.metrics_server).

    `error_map` (the service's `api/errors.py`) is added to the maps of the shared domain errors
    (roles, cursors). `outer_middlewares` run outside the error middleware: they see every
    answer, errors already rendered (e.g. to render some routes' errors in another shape).

    With AuthClientSettings, every route but `public_routes` needs an access token, verified
    against the auth service's JWKS, or an API key, verified by the auth service; and
    `rbac.caller(request)` resolves roles through the auth service (or through `roles`, where a
    test gives its own source).
    """
    provider = tracing.setup_tracing(settings)
    verifies_tokens = isinstance(settings, AuthClientSettings)
    middlewares = [
        *([tracing.server_middleware(provider)] if provider is not None else []),
        metrics.http_metrics_middleware,
        request_context_middleware,
        *outer_middlewares,
        error_middleware({**RBAC_ERRORS, **PAGINATION_ERRORS, **(error_map or {})}),
        *([auth_middleware(public_routes)] if verifies_tokens else []),
        *extra_middlewares,
    ]
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[metrics.SAMPLERS] = []
    app.on_response_prepare.append(echo_request_id)
    app.router.add_routes(health.routes)
    app.router.add_get("/openapi.yaml", openapi.openapi_spec, name="openapi_spec")
    app.cleanup_ctx.append(_http_client_ctx(provider))
    if isinstance(settings, DatabaseSettings):
        app.cleanup_ctx.append(_database_ctx)
    if isinstance(settings, AuthClientSettings):
        app.cleanup_ctx.append(_auth_client_ctx(settings, roles))
    return app


def _auth_client_ctx(settings: AuthClientSettings, roles: RoleSource | None) -> Callable:
    async def auth_client(app: web.Application) -> AsyncIterator[None]:
        session = app[HTTP_CLIENT]
        app[TOKEN_VERIFIER] = TokenVerifier(
            fetch_jwks=jwks_from_url(session, settings.jwks_location()),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            refresh_interval=settings.jwks_refresh_interval,
        )
        app[API_KEY_VERIFIER] = AuthServiceKeys(
            session, settings.auth_url, ttl=settings.api_key_cache_ttl
        )
        app[ROLES] = roles or AuthServiceRoles(
            session, settings.auth_url, ttl=settings.role_cache_ttl
        )
        yield

    return auth_client


def _http_client_ctx(provider: tracing.TracerProvider | None) -> Callable:
    async def http_client(app: web.Application) -> AsyncIterator[None]:
        # No cookie jar: calls between services carry no cookies, and a shared jar would hand
        # one caller's cookies to the next.
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(),
            trace_configs=tracing.client_trace_configs(provider),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as session:
            app[HTTP_CLIENT] = session
            yield

    return http_client


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert isinstance(settings, DatabaseSettings)
    dsn = settings.database_url.get_secret_value()
    _log.info("database_connecting", dsn=mask_dsn(dsn))
    pool = await create_pool(
        dsn,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        command_timeout=settings.db_command_timeout,
    )
    if settings.apply_migrations:
        async with pool.acquire() as conn:
            await migrate(
                conn,
                settings.migrations_path(),
                on_applied=lambda m, ms: _log.info("migration_applied", name=m.name, ms=ms),
                allow_newer=True,
            )
    app[DATABASE] = Database(pool)
    metrics.add_sampler(app, metrics.pool_sampler(pool))
    try:
        yield
    finally:
        await pool.close()
