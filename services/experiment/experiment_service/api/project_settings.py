"""A project's settings for the background jobs (docs/jobs.md)."""

from aiohttp import web

from backend_common.http import json_response, parse_body, parse_path_uuid
from backend_common.rbac import caller
from experiment_service.appkeys import PROJECT_SETTINGS
from experiment_service.models import ProjectSettingsUpdate

routes = web.RouteTableDef()

PATH = "/api/v1/project-settings/{project_id}"


@routes.get(PATH, name="get_project_settings")
async def get_project_settings(request: web.Request) -> web.Response:
    project_id = parse_path_uuid(request, "project_id")
    return json_response(await request.app[PROJECT_SETTINGS].get(caller(request), project_id))


@routes.patch(PATH, name="update_project_settings")
async def update_project_settings(request: web.Request) -> web.Response:
    project_id = parse_path_uuid(request, "project_id")
    body = await parse_body(request, ProjectSettingsUpdate)
    return json_response(
        await request.app[PROJECT_SETTINGS].update(caller(request), project_id, body)
    )
