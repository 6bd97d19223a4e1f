import asyncio

from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.http import json_response
from backend_common.keys import DATABASE, SETTINGS
from backend_common.migrations import (
    MigrationError,
    applied_migrations,
    discover,
    pending_migrations,
)
from backend_common.settings import DatabaseSettings

READY_TIMEOUT = 2.0

routes = web.RouteTableDef()


@routes.get("/health", name="health")
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/ready", name="ready")
async def ready(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not isinstance(settings, DatabaseSettings):
        return json_response({"status": "ready"})
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with request.app[DATABASE].connection() as conn:
                applied = await applied_migrations(conn)
    except Exception as exc:
        raise ProblemError(503, "database_unavailable", f"Database check failed: {exc!r}") from None
    try:
        pending = pending_migrations(discover(settings.migrations_path()), applied)
    except MigrationError as exc:
        raise ProblemError(503, "migrations_inconsistent", str(exc)) from None
    if pending:
        names = ", ".join(m.name for m in pending)
        raise ProblemError(503, "migrations_pending", f"Pending migrations: {names}.")
    return json_response({"status": "ready"})
