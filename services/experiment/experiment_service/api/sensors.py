from datetime import timedelta

from aiohttp import web
from pydantic import ValidationError

from backend_common import conversion
from backend_common.conversion import Converter
from backend_common.http import (
    json_response,
    parse_body,
    parse_path_uuid,
    parse_query,
    validation_problem,
)
from backend_common.idempotency import idempotent
from backend_common.pagination import PageQuery
from backend_common.rbac import caller
from experiment_service.api.listing import page_response
from experiment_service.appkeys import SENSORS
from experiment_service.models import (
    SENSOR_LIST_REPEATED,
    JsonObject,
    NoFields,
    NoQuery,
    ProfileCreate,
    SensorCreate,
    SensorListQuery,
    SensorProjectAdd,
    SensorUpdate,
    TokenRotation,
)
from experiment_service.repositories.sensors import SensorFilter

routes = web.RouteTableDef()

SENSOR_PATH = "/api/v1/sensors/{sensor_id}"


def checked_converter(kind: str, payload: JsonObject, *, field: tuple[str, ...]) -> Converter:
    """The converter of a payload validated against its kind (422 naming `field`.payload)."""
    try:
        return conversion.parse(kind, payload)
    except ValidationError as exc:
        raise validation_problem(exc, location="body", prefix=(*field, "payload")) from None


def checked_profile(profile: ProfileCreate, *, field: tuple[str, ...]) -> ProfileCreate:
    """The profile with its payload validated against its kind (and with defaults filled in)."""
    converter = checked_converter(profile.kind, profile.payload, field=field)
    return profile.model_copy(update={"payload": converter.model_dump()})


@routes.post("/api/v1/sensors", name="create_sensor")
@idempotent(secrets=("token",))
async def create_sensor(request: web.Request) -> web.Response:
    body = await parse_body(request, SensorCreate)
    first_profile = (
        checked_profile(body.conversion_profile, field=("conversion_profile",))
        if body.conversion_profile
        else None
    )
    sensor = await request.app[SENSORS].create(caller(request), body, first_profile=first_profile)
    return json_response(
        sensor,
        status=201,
        headers={"Location": f"/api/v1/sensors/{sensor.id}", "Cache-Control": "no-store"},
    )


@routes.get("/api/v1/sensors", name="list_sensors")
async def list_sensors(request: web.Request) -> web.Response:
    query = parse_query(request, SensorListQuery, repeated=SENSOR_LIST_REPEATED)
    flt = SensorFilter(
        project_id=query.project_id,
        types=tuple(query.type),
        statuses=tuple(query.status),
        q=query.q,
    )
    page = await request.app[SENSORS].list_page(caller(request), flt, query.sort, query.page)
    return page_response(page)


@routes.get(SENSOR_PATH, name="get_sensor")
async def get_sensor(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    return json_response(await request.app[SENSORS].get(caller(request), sensor_id))


@routes.patch(SENSOR_PATH, name="update_sensor")
async def update_sensor(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    body = await parse_body(request, SensorUpdate)
    return json_response(await request.app[SENSORS].update(caller(request), sensor_id, body))


@routes.delete(SENSOR_PATH, name="delete_sensor")
async def delete_sensor(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    await request.app[SENSORS].delete(caller(request), sensor_id)
    return web.Response(status=204)


@routes.post(SENSOR_PATH + "/rotate-token", name="rotate_sensor_token")
async def rotate_sensor_token(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    body = await parse_body(request, TokenRotation, optional=True)
    sensor = await request.app[SENSORS].rotate_token(
        caller(request), sensor_id, grace=timedelta(seconds=body.grace_seconds)
    )
    return json_response(sensor, headers={"Cache-Control": "no-store"})


@routes.post(SENSOR_PATH + "/revoke-token", name="revoke_sensor_token")
async def revoke_sensor_token(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    await parse_body(request, NoFields, optional=True)
    return json_response(await request.app[SENSORS].revoke_tokens(caller(request), sensor_id))


@routes.get(SENSOR_PATH + "/projects", name="list_sensor_projects")
async def list_sensor_projects(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    parse_query(request, NoQuery)
    items = await request.app[SENSORS].projects(caller(request), sensor_id)
    # A sensor belongs to at most MAX_SENSOR_PROJECTS projects: always one page.
    return json_response({"items": items, "next_cursor": None})


@routes.post(SENSOR_PATH + "/projects", name="add_sensor_project")
@idempotent
async def add_sensor_project(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    body = await parse_body(request, SensorProjectAdd)
    link = await request.app[SENSORS].add_project(caller(request), sensor_id, body.project_id)
    return json_response(
        link,
        status=201,
        headers={"Location": f"/api/v1/sensors/{sensor_id}/projects"},
    )


@routes.delete(SENSOR_PATH + "/projects/{project_id}", name="remove_sensor_project")
async def remove_sensor_project(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    project_id = parse_path_uuid(request, "project_id")
    await request.app[SENSORS].remove_project(caller(request), sensor_id, project_id)
    return web.Response(status=204)


@routes.get(SENSOR_PATH + "/ingest-errors", name="list_sensor_ingest_errors")
async def list_sensor_ingest_errors(request: web.Request) -> web.Response:
    """The sensor's ingest error journal (telemetry ingest writes it; the newest few hundred)."""
    sensor_id = parse_path_uuid(request, "sensor_id")
    query = parse_query(request, PageQuery)
    page = await request.app[SENSORS].ingest_errors(caller(request), sensor_id, query.page)
    return page_response(page)
