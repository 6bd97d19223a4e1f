"""MLflow's runs: ETP runs, changed through the run domain (its status machine, audit and
webhooks) with the patches domain.mlflow makes of MLflow's calls."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from backend_common.http import json_response, parse_body, parse_query
from backend_common.pagination import PageRequest
from backend_common.rbac import caller
from backend_common.statuses import RunStatus
from experiment_service.api.mlflow import search
from experiment_service.api.mlflow.experiments import existing_experiment_of, experiment_of
from experiment_service.api.mlflow.wire import (
    BatchLog,
    LoggedModelSearch,
    MetricIn,
    MetricLog,
    ParamLog,
    RunCreateIn,
    RunRef,
    RunSearchIn,
    RunUpdateIn,
    TagDelete,
    TagSet,
    key_project,
    number,
    run_info_json,
    run_json,
)
from experiment_service.appkeys import RUN_METRICS, RUNS
from experiment_service.domain import mlflow
from experiment_service.domain.listing import ListFilter
from experiment_service.domain.models import Run
from experiment_service.models import RunCreate, RunUpdate

_log = structlog.get_logger(__name__)

routes = web.RouteTableDef()
PREFIX = "/api/2.0/mlflow/runs"


async def _run_json(request: web.Request, run: Run) -> dict[str, Any]:
    metrics = await request.app[RUN_METRICS].summaries_of(caller(request), [run])
    return run_json(run, metrics[run.id])


async def _revise(
    request: web.Request, run_id: uuid.UUID, revision: Callable[[Run], RunUpdate | None]
) -> Run:
    key_project(request)
    return await request.app[RUNS].revise(caller(request), run_id, revision)


async def _log_metrics(request: web.Request, run_id: uuid.UUID, metrics: list[MetricIn]) -> None:
    points = [
        {
            "name": metric.key,
            "value": number(metric.value),
            "step": metric.step,
            "timestamp": datetime.fromtimestamp(metric.timestamp / 1000, UTC).isoformat(),
        }
        for metric in metrics
    ]
    await request.app[RUN_METRICS].log(caller(request), run_id, {"metrics": points})


@routes.post(f"{PREFIX}/create", name="mlflow_create_run")
async def create_run(request: web.Request) -> web.Response:
    body = await parse_body(request, RunCreateIn)
    key_project(request)
    experiment_id = await experiment_of(request, body.experiment_id, create=True)
    tags = {tag.key: tag.value for tag in body.tags}
    name = tags.pop(mlflow.RUN_NAME_TAG, None)
    data = RunCreate(
        name=body.run_name or name or f"run-{uuid.uuid4().hex[:8]}",
        tags=mlflow.run_tags([], tags),
        git_sha=mlflow.git_sha(tags),
        metadata=mlflow.initial_metadata(tags),
    )
    runs = request.app[RUNS]
    run = await runs.create(caller(request), experiment_id, data)
    run = await runs.update(caller(request), run.id, RunUpdate(status=RunStatus.RUNNING))
    return json_response({"run": await _run_json(request, run)})


@routes.get(f"{PREFIX}/get", name="mlflow_get_run")
async def get_run(request: web.Request) -> web.Response:
    query = parse_query(request, RunRef)
    key_project(request)
    run = await request.app[RUNS].get(caller(request), query.id)
    return json_response({"run": await _run_json(request, run)})


@routes.post(f"{PREFIX}/update", name="mlflow_update_run")
async def update_run(request: web.Request) -> web.Response:
    body = await parse_body(request, RunUpdateIn)
    run = await _revise(
        request, body.id, lambda run: mlflow.status_change(run, body.status, body.run_name)
    )
    return json_response({"run_info": run_info_json(run)})


@routes.post(f"{PREFIX}/delete", name="mlflow_delete_run")
async def delete_run(request: web.Request) -> web.Response:
    body = await parse_body(request, RunRef)
    await _revise(request, body.id, lambda run: mlflow.lifecycle_change(run, mlflow.DELETED))
    return json_response({})


@routes.post(f"{PREFIX}/restore", name="mlflow_restore_run")
async def restore_run(request: web.Request) -> web.Response:
    body = await parse_body(request, RunRef)
    await _revise(request, body.id, lambda run: mlflow.lifecycle_change(run, mlflow.ACTIVE))
    return json_response({})


@routes.post(f"{PREFIX}/search", name="mlflow_search_runs")
async def search_runs(request: web.Request) -> web.Response:
    body = await parse_body(request, RunSearchIn)
    query = search.run_query(body.filter, body.run_view_type)
    if query.statuses is not None and not query.statuses:
        return json_response({"runs": []})  # statuses that exclude each other
    named = [await existing_experiment_of(request, text) for text in body.experiment_ids]
    experiment_ids = tuple(found for found in named if found is not None)
    if body.experiment_ids and not experiment_ids:
        return json_response({"runs": []})  # only the Default experiment, not made yet
    flt = ListFilter(
        project_id=key_project(request),
        experiment_ids=experiment_ids,
        statuses=tuple(sorted(query.statuses or ())),
        conditions=tuple(query.conditions),
    )
    page = await request.app[RUNS].list_page(
        caller(request),
        flt,
        search.run_sort(body.order_by),
        PageRequest(limit=body.max_results, cursor=body.page_token),
    )
    metrics = await request.app[RUN_METRICS].summaries_of(caller(request), page.items)
    answer: dict[str, Any] = {"runs": [run_json(run, metrics[run.id]) for run in page.items]}
    if page.next_cursor:
        answer["next_page_token"] = page.next_cursor
    return json_response(answer)


@routes.post(f"{PREFIX}/log-metric", name="mlflow_log_metric")
async def log_metric(request: web.Request) -> web.Response:
    body = await parse_body(request, MetricLog)
    key_project(request)
    await _log_metrics(request, body.id, [body])
    return json_response({})


@routes.post(f"{PREFIX}/log-parameter", name="mlflow_log_param")
async def log_param(request: web.Request) -> web.Response:
    body = await parse_body(request, ParamLog)
    await _revise(request, body.id, lambda run: mlflow.logged(run, params={body.key: body.value}))
    return json_response({})


@routes.post(f"{PREFIX}/set-tag", name="mlflow_set_tag")
async def set_tag(request: web.Request) -> web.Response:
    body = await parse_body(request, TagSet)
    await _revise(request, body.id, lambda run: mlflow.logged(run, tags={body.key: body.value}))
    return json_response({})


@routes.post(f"{PREFIX}/delete-tag", name="mlflow_delete_tag")
async def delete_tag(request: web.Request) -> web.Response:
    body = await parse_body(request, TagDelete)
    await _revise(request, body.id, lambda run: mlflow.logged(run, deleted_tags=(body.key,)))
    return json_response({})


@routes.post(f"{PREFIX}/log-batch", name="mlflow_log_batch")
async def log_batch(request: web.Request) -> web.Response:
    body = await parse_body(request, BatchLog)
    key_project(request)
    if body.params or body.tags:
        params = {param.key: param.value for param in body.params}
        tags = {tag.key: tag.value for tag in body.tags}
        await _revise(request, body.id, lambda run: mlflow.logged(run, params=params, tags=tags))
    if body.metrics:
        await _log_metrics(request, body.id, body.metrics)
    return json_response({})


@routes.post(f"{PREFIX}/log-inputs", name="mlflow_log_inputs")
async def log_inputs(request: web.Request) -> web.Response:
    """Datasets have no place in ETP yet: accepted for a run the key may write, and logged."""
    body = await parse_body(request, RunRef)
    key_project(request)
    run = await request.app[RUNS].get(caller(request), body.id)
    _log.info("mlflow_inputs_ignored", run_id=str(run.id))
    return json_response({})


@routes.post("/api/2.0/mlflow/logged-models/search", name="mlflow_search_logged_models")
async def search_logged_models(request: web.Request) -> web.Response:
    """ETP keeps no logged models: none are found (MLflow's client looks for them beside a
    run's artifacts)."""
    await parse_body(request, LoggedModelSearch, optional=True)
    key_project(request)
    return json_response({"models": []})
