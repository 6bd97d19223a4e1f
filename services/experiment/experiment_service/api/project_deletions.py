"""Internal: the auth service announces a deleted project (docs/operations.md, "Deleting a
project"). Not under /api/, so the gateway never forwards it; the caller proves itself with a
service token (backend_common.service_tokens), not a user's access token."""

from typing import Any

from aiohttp import web

from backend_common.http import json_response, parse_body
from backend_common.keys import SETTINGS
from backend_common.service_tokens import PROJECT_DELETIONS_SCOPE, service_caller
from experiment_service.appkeys import PROJECT_DELETIONS
from experiment_service.domain.project_deletions import DeletionNotice
from experiment_service.models import ProjectDeletionIn
from experiment_service.repositories.project_deletions import ProjectDeletion
from experiment_service.settings import ExperimentSettings

routes = web.RouteTableDef()

# Routes the auth middleware lets through without an access token: each checks a service token.
SERVICE_ROUTES = ("record_project_deletion",)


def deletion_out(deletion: ProjectDeletion) -> dict[str, Any]:
    return {
        "project_id": deletion.project_id,
        "event_id": deletion.event_id,
        "deleted_at": deletion.deleted_at,
        "recorded_at": deletion.recorded_at,
        "finished_at": deletion.finished_at,
    }


@routes.post("/internal/v1/project-deletions", name="record_project_deletion")
async def record_project_deletion(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    assert isinstance(settings, ExperimentSettings)
    await service_caller(
        request, audience=settings.internal_audience, scope=PROJECT_DELETIONS_SCOPE
    )
    body = await parse_body(request, ProjectDeletionIn)
    deletion = await request.app[PROJECT_DELETIONS].record(
        DeletionNotice(
            event_id=body.event_id, project_id=body.project_id, deleted_at=body.deleted_at
        )
    )
    return json_response(deletion_out(deletion))
