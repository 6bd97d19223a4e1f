from aiohttp import web

from backend_common.http import parse_query
from backend_common.rbac import caller
from experiment_service.api.listing import page_response
from experiment_service.appkeys import AUDIT_LOG
from experiment_service.domain.audit_log import AuditFilter
from experiment_service.models import AuditQuery

routes = web.RouteTableDef()


@routes.get("/api/v1/audit", name="list_audit_entries")
async def list_audit_entries(request: web.Request) -> web.Response:
    query = parse_query(request, AuditQuery)
    flt = AuditFilter(
        project_id=query.project_id,
        entity_type=query.entity_type,
        entity_id=query.entity_id,
        action=query.action,
        actor_id=query.actor_id,
        since=query.since,
        until=query.until,
    )
    return page_response(
        await request.app[AUDIT_LOG].project_entries(caller(request), flt, query.page)
    )
