from aiohttp import web

from backend_common.export import stream_bounded_export
from backend_common.http import json_response, parse_body, parse_path_uuid, parse_query
from backend_common.idempotency import idempotent
from backend_common.rbac import caller
from experiment_service.api.listing import list_filter, page_response
from experiment_service.appkeys import EXPERIMENTS, EXPORTS, RUNS
from experiment_service.domain.models import Experiment
from experiment_service.models import (
    LIST_REPEATED,
    ExperimentBatchStatusIn,
    ExperimentBulkTagsIn,
    ExperimentCreate,
    ExperimentExportQuery,
    ExperimentListQuery,
    ExperimentUpdate,
    RunCreate,
)

routes = web.RouteTableDef()


@routes.post("/api/v1/experiments", name="create_experiment")
@idempotent
async def create_experiment(request: web.Request) -> web.Response:
    body = await parse_body(request, ExperimentCreate)
    experiment = await request.app[EXPERIMENTS].create(caller(request), body)
    return json_response(
        experiment, status=201, headers={"Location": f"/api/v1/experiments/{experiment.id}"}
    )


@routes.get("/api/v1/experiments", name="list_experiments")
async def list_experiments(request: web.Request) -> web.Response:
    query = parse_query(request, ExperimentListQuery, repeated=LIST_REPEATED)
    page = await request.app[EXPERIMENTS].list_page(
        caller(request), list_filter(query), query.sort, query.page
    )
    return page_response(page)


@routes.get("/api/v1/experiments/export", name="export_experiments")
async def export_experiments(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, ExperimentExportQuery, repeated=LIST_REPEATED)
    export = request.app[EXPERIMENTS].export(caller(request), list_filter(query), query.sort)
    return await stream_bounded_export(
        request,
        export,
        max_seconds=request.app[EXPORTS].limits.max_seconds,
        fmt=query.format,
        name="experiments",
        columns=list(Experiment.model_fields),
    )


@routes.post("/api/v1/experiments:batch-status", name="batch_experiment_status")
@idempotent
async def batch_experiment_status(request: web.Request) -> web.Response:
    body = await parse_body(request, ExperimentBatchStatusIn)
    experiments = await request.app[EXPERIMENTS].batch_status(
        caller(request), body.experiment_ids, body.status
    )
    return json_response({"items": experiments})


@routes.post("/api/v1/experiments:bulk-tags", name="bulk_experiment_tags")
@idempotent
async def bulk_experiment_tags(request: web.Request) -> web.Response:
    body = await parse_body(request, ExperimentBulkTagsIn)
    experiments = await request.app[EXPERIMENTS].bulk_tags(
        caller(request), body.experiment_ids, add=body.add, remove=body.remove, set_=body.set
    )
    return json_response({"items": experiments})


@routes.get("/api/v1/experiments/{experiment_id}", name="get_experiment")
async def get_experiment(request: web.Request) -> web.Response:
    experiment_id = parse_path_uuid(request, "experiment_id")
    return json_response(await request.app[EXPERIMENTS].get(caller(request), experiment_id))


@routes.patch("/api/v1/experiments/{experiment_id}", name="update_experiment")
async def update_experiment(request: web.Request) -> web.Response:
    experiment_id = parse_path_uuid(request, "experiment_id")
    body = await parse_body(request, ExperimentUpdate)
    experiment = await request.app[EXPERIMENTS].update(caller(request), experiment_id, body)
    return json_response(experiment)


@routes.delete("/api/v1/experiments/{experiment_id}", name="delete_experiment")
async def delete_experiment(request: web.Request) -> web.Response:
    experiment_id = parse_path_uuid(request, "experiment_id")
    await request.app[EXPERIMENTS].delete(caller(request), experiment_id)
    return web.Response(status=204)


@routes.post("/api/v1/experiments/{experiment_id}/runs", name="create_run")
@idempotent
async def create_run(request: web.Request) -> web.Response:
    experiment_id = parse_path_uuid(request, "experiment_id")
    body = await parse_body(request, RunCreate)
    run = await request.app[RUNS].create(caller(request), experiment_id, body)
    return json_response(run, status=201, headers={"Location": f"/api/v1/runs/{run.id}"})
