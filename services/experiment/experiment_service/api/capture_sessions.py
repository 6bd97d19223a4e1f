from aiohttp import web

from backend_common.http import json_response, parse_body, parse_path_uuid, parse_query
from backend_common.idempotency import idempotent
from backend_common.pagination import PageQuery
from backend_common.rbac import caller
from backend_common.statuses import CaptureStatus
from experiment_service.api.listing import page_response
from experiment_service.appkeys import AUDIT_LOG, CAPTURE_SESSIONS
from experiment_service.models import (
    CaptureStart,
    CaptureStop,
    CaptureUpdate,
)

routes = web.RouteTableDef()

SESSION_PATH = "/api/v1/runs/{run_id}/capture-sessions/{session_id}"


@routes.post("/api/v1/runs/{run_id}/capture-sessions", name="start_capture_session")
@idempotent
async def start_capture_session(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    body = await parse_body(request, CaptureStart, optional=True)
    session = await request.app[CAPTURE_SESSIONS].start(
        caller(request), run_id, notes=body.notes, duration_seconds=body.duration_seconds
    )
    return json_response(
        session,
        status=201,
        headers={"Location": f"/api/v1/runs/{run_id}/capture-sessions/{session.id}"},
    )


@routes.get("/api/v1/runs/{run_id}/capture-sessions", name="list_capture_sessions")
async def list_capture_sessions(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    query = parse_query(request, PageQuery)
    page = await request.app[CAPTURE_SESSIONS].list_page(caller(request), run_id, query.page)
    return page_response(page)


@routes.get(SESSION_PATH, name="get_capture_session")
async def get_capture_session(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    session_id = parse_path_uuid(request, "session_id")
    return json_response(
        await request.app[CAPTURE_SESSIONS].get(caller(request), run_id, session_id)
    )


@routes.patch(SESSION_PATH, name="update_capture_session")
async def update_capture_session(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    session_id = parse_path_uuid(request, "session_id")
    body = await parse_body(request, CaptureUpdate)
    session = await request.app[CAPTURE_SESSIONS].update_notes(
        caller(request), run_id, session_id, notes=body.notes
    )
    return json_response(session)


@routes.delete(SESSION_PATH, name="delete_capture_session")
async def delete_capture_session(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    session_id = parse_path_uuid(request, "session_id")
    await request.app[CAPTURE_SESSIONS].delete(caller(request), run_id, session_id)
    return web.Response(status=204)


@routes.post(SESSION_PATH + "/stop", name="stop_capture_session")
async def stop_capture_session(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    session_id = parse_path_uuid(request, "session_id")
    body = await parse_body(request, CaptureStop, optional=True)
    session = await request.app[CAPTURE_SESSIONS].stop(
        caller(request),
        run_id,
        session_id,
        status=CaptureStatus(body.status),
        reason=body.reason,
    )
    return json_response(session)


@routes.get(SESSION_PATH + "/events", name="list_capture_session_events")
async def list_capture_session_events(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    session_id = parse_path_uuid(request, "session_id")
    query = parse_query(request, PageQuery)
    page = await request.app[AUDIT_LOG].capture_session_events(
        caller(request), run_id, session_id, query.page
    )
    return page_response(page)
