import asyncio

import structlog
from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.http import json_response
from backend_common.keys import DATABASE, SETTINGS
from backend_common.migrations import (
    MigrationError,
    applied_migrations,
    discover,
    newer_than_known,
    pending_migrations,
)
from backend_common.settings import DatabaseSettings

READY_TIMEOUT = 2.0

_log = structlog.get_logger(__name__)
# Newer migrations already logged by this process (probes come every few seconds).
_NEWER_SEEN: set[str] = set()

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
        known = discover(settings.migrations_path())
        pending = pending_migrations(known, applied, allow_newer=True)
    except MigrationError as exc:
        raise ProblemError(503, "migrations_inconsistent", str(exc)) from None
    if pending:
        names = ", ".join(m.name for m in pending)
        raise ProblemError(503, "migrations_pending", f"Pending migrations: {names}.")
    _, newer = newer_than_known(known, applied)
    unseen = [row.name for row in newer if row.name not in _NEWER_SEEN]
    if unseen:
        # A newer release migrated the database; this one still works on it (expand/contract).
        _NEWER_SEEN.update(unseen)
        _log.warning("newer_migrations_applied", names=unseen)
    return json_response({"status": "ready"})
