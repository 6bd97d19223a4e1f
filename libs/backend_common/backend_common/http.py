"""Request parsing and JSON rendering for handlers."""

import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from backend_common.errors import ProblemError

ModelT = TypeVar("ModelT", bound=BaseModel)

_JSON_TYPES = ("application/json",)


def validation_problem(exc: ValidationError, *, location: str) -> ProblemError:
    errors = [
        {
            "in": location,
            "field": ".".join(str(part) for part in err["loc"]),
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return ProblemError(422, "validation_failed", f"Invalid {location}.", errors=errors)


async def read_json(request: web.Request) -> Any:
    """The body as JSON: 415 for another media type, 413 past the size limit, 400 if malformed."""
    content_type = request.content_type
    if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        raise ProblemError(415, "unsupported_media_type", "Send the body as application/json.")
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(400, "malformed_json", f"The body is not valid JSON: {exc}") from None


async def parse_body(request: web.Request, model: type[ModelT]) -> ModelT:
    data = await read_json(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc, location="body") from None


def parse_query(
    request: web.Request, model: type[ModelT], *, repeated: tuple[str, ...] = ()
) -> ModelT:
    """Query parameters into `model`; names in `repeated` keep every value as a list."""
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        data[key] = values if key in repeated else values[-1]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc, location="query") from None


def parse_path_uuid(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise ProblemError(404, "not_found", f"No such {name.removesuffix('_id')}.") from None


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return web.Response(
        body=orjson.dumps(data, default=_default),
        status=status,
        content_type="application/json",
        headers=headers,
    )
