"""MLflow's proxied artifacts (`mlflow-artifacts:/<experiment>/<run>/artifacts/<path>`): ETP
artifacts of the run, named by their path. A path uploaded again is a new artifact; the newest
of a name is the one read."""

import posixpath
import uuid
from contextlib import aclosing
from typing import Any

from aiohttp import web

from backend_common.http import json_response, parse_query
from backend_common.pagination import PageRequest
from backend_common.rbac import caller
from experiment_service.api.artifacts import batched, media_type, raw_pieces, serve_download
from experiment_service.api.mlflow.errors import INVALID_PARAMETER_VALUE, mlflow_error
from experiment_service.api.mlflow.wire import ArtifactListQuery, key_project, run_id_of
from experiment_service.appkeys import ARTIFACTS
from experiment_service.domain.artifacts.models import NewArtifact

routes = web.RouteTableDef()
PREFIX = "/api/2.0/mlflow-artifacts/artifacts"
# What one listing reads of a run's artifacts.
MAX_LISTED = 10_000


def _located(path: str) -> tuple[uuid.UUID, str]:
    """The run and the path inside its artifacts of `<experiment>/<run>/artifacts[/<path>]`."""
    parts = path.strip("/").split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts":
        raise mlflow_error(
            INVALID_PARAMETER_VALUE,
            f"'{path}' is not a path of ETP's run artifacts (<experiment>/<run>/artifacts/...).",
        )
    inner = parts[3] if len(parts) == 4 else ""
    if inner and (posixpath.normpath(inner) != inner.rstrip("/") or inner.startswith(("../", "/"))):
        raise mlflow_error(INVALID_PARAMETER_VALUE, f"Invalid artifact path '{inner}'.")
    return run_id_of(parts[1]), inner.rstrip("/")


@routes.put(PREFIX + "/{path:.+}", name="mlflow_upload_artifact")
async def upload_artifact(request: web.Request) -> web.Response:
    key_project(request)
    run_id, name = _located(request.match_info["path"])
    if not name:
        raise mlflow_error(INVALID_PARAMETER_VALUE, "Give the artifact's path.")
    new = NewArtifact(
        name=name,
        type="file",
        content_type=media_type(request.headers.get("Content-Type")),
        metadata={"mlflow": {"path": name}},
        declared_size=request.content_length,
    )
    async with aclosing(batched(raw_pieces(request.content))) as body:
        await request.app[ARTIFACTS].upload(caller(request), run_id, new, body)
    return json_response({})


@routes.get(PREFIX + "/{path:.+}", name="mlflow_download_artifact", allow_head=False)
async def download_artifact(request: web.Request) -> web.StreamResponse:
    key_project(request)
    run_id, name = _located(request.match_info["path"])
    download = await request.app[ARTIFACTS].download_named(caller(request), run_id, name)
    return await serve_download(request, download)


@routes.get(PREFIX, name="mlflow_list_artifacts", allow_head=False)
async def list_artifacts(request: web.Request) -> web.Response:
    """The files and folders right under `path`, by their base names (as MLflow's server)."""
    query = parse_query(request, ArtifactListQuery)
    key_project(request)
    run_id, folder = _located(query.path)
    page = await request.app[ARTIFACTS].list_page(
        caller(request), run_id, PageRequest(limit=MAX_LISTED)
    )
    prefix = f"{folder}/" if folder else ""
    entries: dict[str, dict[str, Any]] = {}
    for artifact in page.items:  # oldest first: a newer upload of a path wins
        if not artifact.name.startswith(prefix):
            continue
        head, slash, _ = artifact.name[len(prefix) :].partition("/")
        if slash:
            entries[head] = {"path": head, "is_dir": True}
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": artifact.size}
    return json_response({"files": [entries[name] for name in sorted(entries)]})
