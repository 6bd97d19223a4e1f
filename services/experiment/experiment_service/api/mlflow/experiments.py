"""MLflow's experiments: ETP experiments of the API key's project."""

import uuid
from collections.abc import Callable

from aiohttp import web

from backend_common.http import json_response, parse_body, parse_query
from backend_common.pagination import PageRequest
from backend_common.rbac import caller
from experiment_service.api.mlflow import search
from experiment_service.api.mlflow.errors import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    mlflow_error,
)
from experiment_service.api.mlflow.wire import (
    ExperimentByName,
    ExperimentCreateIn,
    ExperimentRef,
    ExperimentSearchIn,
    ExperimentTagDelete,
    ExperimentTagSet,
    ExperimentUpdateIn,
    experiment_id_of,
    experiment_json,
    key_project,
)
from experiment_service.appkeys import EXPERIMENTS
from experiment_service.domain import mlflow
from experiment_service.domain.listing import ListFilter, SortOrder
from experiment_service.domain.models import Experiment
from experiment_service.domain.run_queries import TextCompare, TextCondition
from experiment_service.models import ExperimentCreate, ExperimentUpdate

routes = web.RouteTableDef()
PREFIX = "/api/2.0/mlflow/experiments"
# What MLflow's client runs in when no experiment is set (its experiment id "0").
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT = "Default"


async def named(request: web.Request, name: str) -> Experiment | None:
    """The key's project's oldest experiment of that name (ETP does not make names unique)."""
    flt = ListFilter(
        project_id=key_project(request),
        conditions=(TextCondition("name", (), TextCompare.EQ, name),),
    )
    page = await request.app[EXPERIMENTS].list_page(
        caller(request), flt, SortOrder.CREATED_AT, PageRequest(limit=1)
    )
    return page.items[0] if page.items else None


async def experiment_of(request: web.Request, text: str, *, create: bool = False) -> uuid.UUID:
    """The experiment an MLflow id names; "0" is the project's Default experiment (made when
    `create`: MLflow's client logs runs there when no experiment is set)."""
    found = await existing_experiment_of(request, text)
    if found is None and create:
        experiment = await request.app[EXPERIMENTS].create(
            caller(request), ExperimentCreate(project_id=key_project(request), name="Default")
        )
        found = experiment.id
    if found is None:
        raise mlflow_error(RESOURCE_DOES_NOT_EXIST, "No Experiment with id=0 exists.")
    return found


async def existing_experiment_of(request: web.Request, text: str) -> uuid.UUID | None:
    """The experiment an MLflow id names; None for "0" while the project has no Default one."""
    if text != DEFAULT_EXPERIMENT_ID:
        return experiment_id_of(text)
    experiment = await named(request, DEFAULT_EXPERIMENT)
    return None if experiment is None else experiment.id


async def _get(request: web.Request, text: str) -> Experiment:
    experiment_id = await experiment_of(request, text)
    key_project(request)
    return await request.app[EXPERIMENTS].get(caller(request), experiment_id)


@routes.post(f"{PREFIX}/create", name="mlflow_create_experiment")
async def create_experiment(request: web.Request) -> web.Response:
    body = await parse_body(request, ExperimentCreateIn)
    if await named(request, body.name) is not None:
        raise mlflow_error(RESOURCE_ALREADY_EXISTS, f"Experiment(name={body.name}) already exists.")
    tags = {tag.key: tag.value for tag in body.tags}
    experiment = await request.app[EXPERIMENTS].create(
        caller(request),
        ExperimentCreate(
            project_id=key_project(request), name=body.name, metadata=mlflow.initial_metadata(tags)
        ),
    )
    return json_response({"experiment_id": experiment.id.hex})


@routes.get(f"{PREFIX}/get", name="mlflow_get_experiment")
async def get_experiment(request: web.Request) -> web.Response:
    query = parse_query(request, ExperimentRef)
    experiment = await _get(request, query.experiment_id)
    return json_response({"experiment": experiment_json(experiment)})


@routes.get(f"{PREFIX}/get-by-name", name="mlflow_get_experiment_by_name")
async def get_experiment_by_name(request: web.Request) -> web.Response:
    query = parse_query(request, ExperimentByName)
    experiment = await named(request, query.experiment_name)
    if experiment is None:
        message = f"Could not find experiment with name '{query.experiment_name}'"
        raise mlflow_error(RESOURCE_DOES_NOT_EXIST, message)
    return json_response({"experiment": experiment_json(experiment)})


@routes.post(f"{PREFIX}/search", name="mlflow_search_experiments")
async def search_experiments(request: web.Request) -> web.Response:
    body = await parse_body(request, ExperimentSearchIn, optional=True)
    flt = ListFilter(
        project_id=key_project(request),
        conditions=tuple(search.experiment_query(body.filter, body.view_type)),
    )
    page = await request.app[EXPERIMENTS].list_page(
        caller(request),
        flt,
        search.experiment_sort(body.order_by),
        PageRequest(limit=body.max_results, cursor=body.page_token),
    )
    answer: dict[str, object] = {"experiments": [experiment_json(e) for e in page.items]}
    if page.next_cursor:
        answer["next_page_token"] = page.next_cursor
    return json_response(answer)


async def _revise(
    request: web.Request,
    text: str,
    revision: Callable[[Experiment], ExperimentUpdate | None],
) -> web.Response:
    experiment_id = await experiment_of(request, text)
    key_project(request)
    await request.app[EXPERIMENTS].revise(caller(request), experiment_id, revision)
    return json_response({})


@routes.post(f"{PREFIX}/update", name="mlflow_update_experiment")
async def update_experiment(request: web.Request) -> web.Response:
    body = await parse_body(request, ExperimentUpdateIn)
    return await _revise(
        request, body.experiment_id, lambda e: mlflow.experiment_change(e, name=body.new_name)
    )


@routes.post(f"{PREFIX}/delete", name="mlflow_delete_experiment")
async def delete_experiment(request: web.Request) -> web.Response:
    body = await parse_body(request, ExperimentRef)
    return await _revise(
        request, body.experiment_id, lambda e: mlflow.experiment_change(e, stage=mlflow.DELETED)
    )


@routes.post(f"{PREFIX}/restore", name="mlflow_restore_experiment")
async def restore_experiment(request: web.Request) -> web.Response:
    body = await parse_body(request, ExperimentRef)
    return await _revise(
        request, body.experiment_id, lambda e: mlflow.experiment_change(e, stage=mlflow.ACTIVE)
    )


@routes.post(f"{PREFIX}/set-experiment-tag", name="mlflow_set_experiment_tag")
async def set_experiment_tag(request: web.Request) -> web.Response:
    body = await parse_body(request, ExperimentTagSet)
    tags = {body.key: body.value}
    return await _revise(
        request, body.experiment_id, lambda e: mlflow.experiment_change(e, tags=tags)
    )


@routes.post(f"{PREFIX}/delete-experiment-tag", name="mlflow_delete_experiment_tag")
async def delete_experiment_tag(request: web.Request) -> web.Response:
    body = await parse_body(request, ExperimentTagDelete)
    deleted = (body.key,)
    return await _revise(
        request, body.experiment_id, lambda e: mlflow.experiment_change(e, deleted_tags=deleted)
    )
