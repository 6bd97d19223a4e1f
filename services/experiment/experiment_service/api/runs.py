from aiohttp import web

from backend_common.export import stream_bounded_export
from backend_common.http import json_response, parse_body, parse_path_uuid, parse_query
from backend_common.idempotency import idempotent
from backend_common.pagination import PageQuery
from backend_common.rbac import caller
from experiment_service.api.listing import list_filter, page_response
from experiment_service.api.run_queries import PREFIXES, run_conditions, run_sort
from experiment_service.appkeys import AUDIT_LOG, EXPORTS, RUNS
from experiment_service.domain.models import Run
from experiment_service.models import (
    LIST_REPEATED,
    BatchStatusIn,
    BulkTagsIn,
    ParamsMerge,
    RunExportQuery,
    RunListQuery,
    RunUpdate,
)

routes = web.RouteTableDef()


@routes.get("/api/v1/runs", name="list_runs")
async def list_runs(request: web.Request) -> web.Response:
    query = parse_query(request, RunListQuery, repeated=LIST_REPEATED, leave=PREFIXES)
    flt = list_filter(query, run_conditions(request))
    page = await request.app[RUNS].list_page(caller(request), flt, run_sort(query.sort), query.page)
    return page_response(page)


@routes.get("/api/v1/runs/export", name="export_runs")
async def export_runs(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, RunExportQuery, repeated=LIST_REPEATED, leave=PREFIXES)
    flt = list_filter(query, run_conditions(request))
    export = request.app[RUNS].export(caller(request), flt, run_sort(query.sort))
    return await stream_bounded_export(
        request,
        export,
        max_seconds=request.app[EXPORTS].limits.max_seconds,
        fmt=query.format,
        name="runs",
        columns=list(Run.model_fields),
    )


@routes.post("/api/v1/runs:batch-status", name="batch_run_status")
@idempotent
async def batch_run_status(request: web.Request) -> web.Response:
    body = await parse_body(request, BatchStatusIn)
    runs = await request.app[RUNS].batch_status(caller(request), body.run_ids, body.status)
    return json_response({"items": runs})


@routes.post("/api/v1/runs:bulk-tags", name="bulk_run_tags")
@idempotent
async def bulk_run_tags(request: web.Request) -> web.Response:
    body = await parse_body(request, BulkTagsIn)
    runs = await request.app[RUNS].bulk_tags(
        caller(request), body.run_ids, add=body.add, remove=body.remove, set_=body.set
    )
    return json_response({"items": runs})


@routes.get("/api/v1/runs/{run_id}", name="get_run")
async def get_run(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    return json_response(await request.app[RUNS].get(caller(request), run_id))


@routes.patch("/api/v1/runs/{run_id}", name="update_run")
async def update_run(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    body = await parse_body(request, RunUpdate)
    return json_response(await request.app[RUNS].update(caller(request), run_id, body))


@routes.post("/api/v1/runs/{run_id}/params", name="merge_run_params")
@idempotent
async def merge_run_params(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    body = await parse_body(request, ParamsMerge)
    return json_response(await request.app[RUNS].merge_params(caller(request), run_id, body.params))


@routes.delete("/api/v1/runs/{run_id}", name="delete_run")
async def delete_run(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    await request.app[RUNS].delete(caller(request), run_id)
    return web.Response(status=204)


@routes.get("/api/v1/runs/{run_id}/events", name="list_run_events")
async def list_run_events(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    query = parse_query(request, PageQuery)
    return page_response(
        await request.app[AUDIT_LOG].run_events(caller(request), run_id, query.page)
    )
