"""Artifacts over HTTP: uploads streamed in (a raw body or one multipart/form-data file part),
downloads streamed out with ranges and entity tags."""

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import BinaryIO

import structlog
from aiohttp import BodyPartReader, MultipartReader, StreamReader, web
from aiohttp.http_exceptions import BadHttpMessage

from backend_common.errors import DomainError, ProblemError
from backend_common.http import json_response, parse_body, parse_path_uuid, parse_query
from backend_common.idempotency import HEADER as IDEMPOTENCY_KEY
from backend_common.idempotency import REPLAY_HEADER
from backend_common.rbac import caller
from experiment_service.api.listing import page_response
from experiment_service.api.ranges import (
    attachment,
    entity_tag,
    none_match,
    range_applies,
    requested_range,
)
from experiment_service.appkeys import ARTIFACTS
from experiment_service.domain.artifacts.models import (
    Answer,
    Artifact,
    Download,
    NewArtifact,
    Replay,
    UploadKey,
)
from experiment_service.models import ArtifactListQuery, ArtifactUploadQuery, NoFields, NoQuery

_log = structlog.get_logger(__name__)

routes = web.RouteTableDef()

ARTIFACT_PATH = "/api/v1/artifacts/{artifact_id}"
# Bytes handed on per step: big enough that the per-step cost (a thread hop to hash and write)
# is small, small enough that memory stays flat.
CHUNK = 1024 * 1024
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;[\x20-\x7e]*)?")
DEFAULT_MEDIA_TYPE = "application/octet-stream"
# Served files are the users' own: never rendered as a page of ours, never sniffed.
_DOWNLOAD_HEADERS = {
    "Accept-Ranges": "bytes",
    "Cache-Control": "private, no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def _location(artifact: Artifact) -> str:
    return f"/api/v1/artifacts/{artifact.id}"


def _answer(artifact: Artifact) -> Answer:
    # The body json_response gives a model, so a replay is byte for byte the first answer.
    return Answer(201, artifact.model_dump_json().encode(), "application/json", _location(artifact))


def _upload_key(request: web.Request) -> UploadKey | None:
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None:
        return None
    if not _VALID_KEY.fullmatch(key):
        raise ProblemError(
            400, "invalid_idempotency_key", f"{IDEMPOTENCY_KEY} must be 1-255 printable characters."
        )
    return UploadKey(key, f"{request.method} {request.path_qs}".encode(), _answer)


def media_type(value: str | None) -> str:
    if value is None or not value.strip():
        return DEFAULT_MEDIA_TYPE
    value = value.strip()
    if len(value) > 255 or not _MEDIA_TYPE.fullmatch(value):
        raise ProblemError(
            415, "unsupported_media_type", "Content-Type must be a media type (type/subtype)."
        )
    return value


def _missing(field: str, message: str) -> ProblemError:
    error = {"in": "query", "field": field, "message": message, "type": "missing"}
    return ProblemError(422, "validation_failed", "Invalid query.", errors=[error])


async def batched(read: AsyncIterator[bytes]) -> AsyncGenerator[list[bytes], None]:
    """The pieces `read` gives, in batches of about CHUNK bytes (not joined: a copy less); a
    client that breaks its body off is a 400 (the object written so far is discarded)."""
    pieces: list[bytes] = []
    size = 0
    try:
        async for piece in read:
            pieces.append(piece)
            size += len(piece)
            if size >= CHUNK:
                yield pieces
                pieces, size = [], 0
    except (ConnectionError, BadHttpMessage) as exc:
        raise ProblemError(400, "incomplete_body", f"The body broke off: {exc}") from None
    if pieces:
        yield pieces


async def raw_pieces(content: StreamReader) -> AsyncIterator[bytes]:
    while piece := await content.readany():
        yield piece


async def _form_pieces(reader: MultipartReader, part: BodyPartReader) -> AsyncIterator[bytes]:
    while piece := await part.read_chunk(CHUNK):
        yield piece
    if await reader.next() is not None:
        raise ProblemError(
            422,
            "validation_failed",
            "Send one part, the file.",
            errors=[{"in": "body", "field": "file", "message": "only one part", "type": "extra"}],
        )


async def _file_part(request: web.Request) -> tuple[MultipartReader, BodyPartReader]:
    try:
        reader = await request.multipart()
        part = await reader.next()
    except (ValueError, AssertionError, BadHttpMessage) as exc:
        raise ProblemError(400, "malformed_multipart", f"The form is malformed: {exc}") from None
    if not isinstance(part, BodyPartReader) or part.name != "file":
        error = {
            "in": "body",
            "field": "file",
            "message": "the first part must be the file, named `file`",
            "type": "missing",
        }
        raise ProblemError(422, "validation_failed", "Invalid body.", errors=[error])
    return reader, part


@routes.post("/api/v1/runs/{run_id}/artifacts", name="upload_artifact")
async def upload_artifact(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    query = parse_query(request, ArtifactUploadQuery)
    key = _upload_key(request)
    if request.content_type == "multipart/form-data":
        reader, part = await _file_part(request)
        name = query.name or _form_name(part.filename)
        new = NewArtifact(
            name=name,
            type=query.type,
            content_type=media_type(part.headers.get("Content-Type")),
            metadata=query.metadata,
        )
        body = batched(_form_pieces(reader, part))
    else:
        if query.name is None:
            raise _missing("name", "give the artifact's name")
        new = NewArtifact(
            name=query.name,
            type=query.type,
            content_type=media_type(request.headers.get("Content-Type")),
            metadata=query.metadata,
            declared_size=request.content_length,
        )
        body = batched(raw_pieces(request.content))
    async with aclosing(body):
        stored = await request.app[ARTIFACTS].upload(caller(request), run_id, new, body, key=key)
    if isinstance(stored, Replay):
        answer = stored.answer
        headers = {REPLAY_HEADER: "true"}
        if answer.location:
            headers["Location"] = answer.location
        return web.Response(
            status=answer.status,
            body=answer.body,
            content_type=answer.content_type,
            headers=headers,
        )
    return json_response(stored, status=201, headers={"Location": _location(stored)})


def _form_name(filename: str | None) -> str:
    """The form's file name as the artifact's name, checked as `?name=` would be."""
    if not filename:
        raise _missing("name", "give the artifact's name (or a file name in the form)")
    try:
        return ArtifactUploadQuery.model_validate({"name": filename}).name or ""
    except ValueError:
        raise ProblemError(
            422,
            "validation_failed",
            "Invalid body.",
            errors=[
                {
                    "in": "body",
                    "field": "file.filename",
                    "message": "must be 1-1024 characters without control characters",
                    "type": "value_error",
                }
            ],
        ) from None


@routes.get("/api/v1/runs/{run_id}/artifacts", name="list_run_artifacts")
async def list_run_artifacts(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    query = parse_query(request, ArtifactListQuery)
    page = await request.app[ARTIFACTS].list_page(
        caller(request), run_id, query.page, type_=query.type
    )
    return page_response(page)


@routes.get(ARTIFACT_PATH, name="get_artifact")
async def get_artifact(request: web.Request) -> web.Response:
    artifact_id = parse_path_uuid(request, "artifact_id")
    parse_query(request, NoQuery)
    return json_response(await request.app[ARTIFACTS].get(caller(request), artifact_id))


@routes.get(ARTIFACT_PATH + "/content", name="download_artifact")
async def download_artifact(request: web.Request) -> web.StreamResponse:
    artifact_id = parse_path_uuid(request, "artifact_id")
    parse_query(request, NoQuery)
    download = await request.app[ARTIFACTS].download(caller(request), artifact_id)
    return await serve_download(request, download)


async def serve_download(request: web.Request, download: Download) -> web.StreamResponse:
    """The artifact's bytes, with entity tag, conditional requests and one byte range."""
    artifact = download.artifact
    tag = entity_tag(artifact.sha256)
    if none_match(request.headers.get("If-None-Match"), tag):
        return web.Response(
            status=304, headers={"ETag": tag, "Cache-Control": _DOWNLOAD_HEADERS["Cache-Control"]}
        )
    byte_range = None
    if range_applies(request.headers.get("If-Range"), tag):
        byte_range = requested_range(request.headers.get("Range"), artifact.size)
    start, stop = (0, artifact.size) if byte_range is None else (byte_range.start, byte_range.stop)
    response = web.StreamResponse(
        status=200 if byte_range is None else 206,
        headers={
            **_DOWNLOAD_HEADERS,
            "ETag": tag,
            "Content-Type": artifact.content_type,
            "Content-Disposition": attachment(artifact.name),
        },
    )
    if byte_range is not None:
        response.headers["Content-Range"] = byte_range.content_range(artifact.size)
    response.content_length = stop - start
    if request.method == "HEAD" or start == stop:
        await response.prepare(request)
        await response.write_eof()
        return response
    if download.file is not None:
        return await _send_file(request, response, download.file, start, stop)
    async with aclosing(download.chunks(start, stop)) as chunks:
        # The first chunk before the head: a store that cannot be read is still a 503.
        first = await anext(chunks)
        await response.prepare(request)
        try:
            await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
        except ConnectionError:
            return response  # the client went away
        except DomainError as exc:
            # The head is gone: all that is left is to cut the answer short.
            _log.warning("artifact_download_broken", artifact_id=str(artifact.id), error=str(exc))
            if request.transport is not None:
                request.transport.close()
            return response
    await response.write_eof()
    return response


async def _send_file(
    request: web.Request, response: web.StreamResponse, path: Path, start: int, stop: int
) -> web.StreamResponse:
    """The bytes of a file on this machine, copied to the socket by the kernel (sendfile)."""
    try:
        source = await asyncio.to_thread(path.open, "rb")
    except FileNotFoundError:  # deleted since its row was read
        raise ProblemError(404, "artifact_not_found", "No such artifact.") from None
    with source:
        await response.prepare(request)
        transport = request.transport
        if transport is None:
            return response
        try:
            await asyncio.get_running_loop().sendfile(transport, source, start, stop - start)
        except NotImplementedError:  # e.g. TLS: the kernel cannot encrypt
            await _copy_file(response, source, start, stop)
        except ConnectionError:
            return response  # the client went away
    await response.write_eof()
    return response


async def _copy_file(response: web.StreamResponse, source: BinaryIO, start: int, stop: int) -> None:
    source.seek(start)
    left = stop - start
    while left > 0:
        chunk = await asyncio.to_thread(source.read, min(CHUNK, left))
        if not chunk:
            raise ConnectionResetError("the stored artifact is shorter than recorded")
        await response.write(chunk)
        left -= len(chunk)


@routes.post(ARTIFACT_PATH + "/approve", name="approve_artifact")
async def approve_artifact(request: web.Request) -> web.Response:
    artifact_id = parse_path_uuid(request, "artifact_id")
    await parse_body(request, NoFields, optional=True)
    return json_response(await request.app[ARTIFACTS].approve(caller(request), artifact_id))


@routes.delete(ARTIFACT_PATH, name="delete_artifact")
async def delete_artifact(request: web.Request) -> web.Response:
    artifact_id = parse_path_uuid(request, "artifact_id")
    await request.app[ARTIFACTS].delete(caller(request), artifact_id)
    return web.Response(status=204)
