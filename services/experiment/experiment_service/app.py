from collections.abc import AsyncIterator

from aiohttp import web

from backend_common.app import create_base_app
from backend_common.idempotency import purge_expired_ctx
from backend_common.keys import DATABASE
from backend_common.rbac import RoleSource
from experiment_service.api import audit, capture_sessions, experiments, runs
from experiment_service.appkeys import AUDIT_LOG, CAPTURE_SESSIONS, EXPERIMENTS, RUNS
from experiment_service.domain.audit_log import AuditLog
from experiment_service.domain.capture_sessions import CaptureSessions
from experiment_service.domain.errors import ERROR_MAP
from experiment_service.domain.experiments import Experiments
from experiment_service.domain.runs import Runs
from experiment_service.settings import ExperimentSettings


def create_app(settings: ExperimentSettings, *, roles: RoleSource | None = None) -> web.Application:
    app = create_base_app(settings, error_map=ERROR_MAP, roles=roles)
    app.cleanup_ctx.append(_domain_ctx)
    app.cleanup_ctx.append(purge_expired_ctx)
    for module in (experiments, runs, capture_sessions, audit):
        app.router.add_routes(module.routes)
    return app


async def _domain_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[DATABASE]
    app[EXPERIMENTS] = Experiments(db)
    app[RUNS] = Runs(db)
    app[CAPTURE_SESSIONS] = CaptureSessions(db)
    app[AUDIT_LOG] = AuditLog(db)
    yield
