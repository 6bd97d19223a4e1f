"""Request parsing and JSON rendering for handlers."""

import json
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from backend_common.errors import ProblemError

ModelT = TypeVar("ModelT", bound=BaseModel)

_JSON_TYPES = ("application/json",)


def validation_problem(
    exc: ValidationError, *, location: str, prefix: tuple[str, ...] = ()
) -> ProblemError:
    """A 422 listing each invalid field; `prefix` is where the validated value sits."""
    errors = [
        {
            "in": location,
            "field": ".".join(str(part) for part in (*prefix, *err["loc"])),
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return ProblemError(422, "validation_failed", f"Invalid {location}.", errors=errors)


async def read_json(request: web.Request, *, empty: Any = None, nan_tokens: bool = False) -> Any:
    """The body as JSON: 415 for another media type, 413 past the size limit, 400 if malformed.

    A request without a body gives `empty` when that is not None (for bodies whose fields are
    all optional), else it is malformed. With `nan_tokens`, the bare `NaN`, `Infinity` and
    `-Infinity` that Python's json module writes (not JSON, but what many clients send) are read
    as floats; a body with them is parsed by the standard library, a few times slower.
    """
    if empty is not None and not request.body_exists:
        return empty
    content_type = request.content_type
    if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        raise ProblemError(415, "unsupported_media_type", "Send the body as application/json.")
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if nan_tokens:
            try:
                return json.loads(raw)
            except ValueError:
                pass
        raise ProblemError(400, "malformed_json", f"The body is not valid JSON: {exc}") from None


def _nul_problem(location: str, field: str) -> ProblemError:
    # PostgreSQL cannot store NUL in text or jsonb: refuse it here instead of failing there.
    error = {
        "in": location,
        "field": field,
        "message": "must not contain NUL (\\u0000) characters",
        "type": "string_nul",
    }
    return ProblemError(422, "validation_failed", f"Invalid {location}.", errors=[error])


# orjson, which encodes jsonb for asyncpg and every response, stops at 254 levels, and the walk
# below recurses: refuse deeper documents here instead of failing later with a 500.
MAX_JSON_DEPTH = 64


def _too_deep_problem(field: str) -> ProblemError:
    error = {
        "in": "body",
        "field": field,
        "message": f"must not nest objects and arrays more than {MAX_JSON_DEPTH} levels deep",
        "type": "json_too_deep",
    }
    return ProblemError(422, "validation_failed", "Invalid body.", errors=[error])


def check_json_values(value: Any, path: str = "", depth: int = 0) -> None:
    """422 for a NUL character or nesting past MAX_JSON_DEPTH anywhere in `value`."""
    if isinstance(value, str):
        if "\x00" in value:
            raise _nul_problem("body", path)
        return
    if isinstance(value, dict | list) and depth >= MAX_JSON_DEPTH:
        raise _too_deep_problem(path)
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise _nul_problem("body", path)
            check_json_values(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json_values(item, f"{path}.{index}" if path else str(index), depth + 1)


async def parse_body(
    request: web.Request, model: type[ModelT], *, optional: bool = False
) -> ModelT:
    """The body validated into `model`; with `optional`, no body at all means `{}`."""
    data = await read_json(request, empty={} if optional else None)
    check_json_values(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc, location="body") from None


def parse_query(
    request: web.Request,
    model: type[ModelT],
    *,
    repeated: tuple[str, ...] = (),
    leave: tuple[str, ...] = (),
) -> ModelT:
    """Query parameters into `model`; names in `repeated` keep every value as a list, names
    that start with one of `leave` are left to the caller (their names are not fixed)."""
    data: dict[str, Any] = {}
    for key in request.query:
        if leave and key.startswith(leave):
            continue
        values = request.query.getall(key)
        if any("\x00" in value for value in values):
            raise _nul_problem("query", key)
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
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID type, which orjson does not know
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = (
        data.model_dump_json().encode()
        if isinstance(data, BaseModel)
        else orjson.dumps(data, default=_default, option=orjson.OPT_UTC_Z)
    )
    return web.Response(
        body=body,
        status=status,
        content_type="application/json",
        headers=headers,
    )
