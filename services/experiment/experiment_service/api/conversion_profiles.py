from aiohttp import web

from backend_common.http import json_response, parse_body, parse_path_uuid, parse_query
from backend_common.idempotency import idempotent
from backend_common.pagination import PageQuery
from backend_common.rbac import caller
from experiment_service.api.listing import page_response
from experiment_service.api.sensors import SENSOR_PATH, checked_converter, checked_profile
from experiment_service.appkeys import BACKFILLS, CONVERSION_PROFILES
from experiment_service.models import (
    NoFields,
    NoQuery,
    ProfileCreate,
    ProfilePreview,
    ProfileSchedule,
    PublishQuery,
)

routes = web.RouteTableDef()

PROFILES_PATH = SENSOR_PATH + "/conversion-profiles"
PROFILE_PATH = PROFILES_PATH + "/{profile_id}"


@routes.post(PROFILES_PATH, name="create_conversion_profile")
@idempotent
async def create_conversion_profile(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    body = checked_profile(await parse_body(request, ProfileCreate), field=())
    profile = await request.app[CONVERSION_PROFILES].create(caller(request), sensor_id, body)
    return json_response(
        profile,
        status=201,
        headers={"Location": f"/api/v1/sensors/{sensor_id}/conversion-profiles/{profile.id}"},
    )


@routes.post(PROFILES_PATH + ":preview", name="preview_conversion_profile")
async def preview_conversion_profile(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    body = await parse_body(request, ProfilePreview)
    converter = checked_converter(body.kind, body.payload, field=())
    points = await request.app[CONVERSION_PROFILES].preview(
        caller(request), sensor_id, converter, body.raw_values
    )
    return json_response({"items": points})


@routes.get(PROFILES_PATH, name="list_conversion_profiles")
async def list_conversion_profiles(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    query = parse_query(request, PageQuery)
    page = await request.app[CONVERSION_PROFILES].list_page(caller(request), sensor_id, query.page)
    return page_response(page)


@routes.get(PROFILE_PATH, name="get_conversion_profile")
async def get_conversion_profile(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    profile_id = parse_path_uuid(request, "profile_id")
    return json_response(
        await request.app[CONVERSION_PROFILES].get(caller(request), sensor_id, profile_id)
    )


@routes.post(PROFILE_PATH + "/schedule", name="schedule_conversion_profile")
async def schedule_conversion_profile(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    profile_id = parse_path_uuid(request, "profile_id")
    body = await parse_body(request, ProfileSchedule)
    profile = await request.app[CONVERSION_PROFILES].schedule(
        caller(request), sensor_id, profile_id, body.valid_from
    )
    return json_response(profile)


@routes.post(PROFILE_PATH + "/publish", name="publish_conversion_profile")
async def publish_conversion_profile(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    profile_id = parse_path_uuid(request, "profile_id")
    if parse_query(request, PublishQuery).backfill:
        body = await parse_body(request, ProfileSchedule)
        published = await request.app[CONVERSION_PROFILES].publish_backfill(
            caller(request), sensor_id, profile_id, body.valid_from
        )
        return json_response(published)
    await parse_body(request, NoFields, optional=True)
    profile = await request.app[CONVERSION_PROFILES].publish(caller(request), sensor_id, profile_id)
    return json_response(profile)


@routes.post(PROFILE_PATH + "/deprecate", name="deprecate_conversion_profile")
async def deprecate_conversion_profile(request: web.Request) -> web.Response:
    sensor_id = parse_path_uuid(request, "sensor_id")
    profile_id = parse_path_uuid(request, "profile_id")
    await parse_body(request, NoFields, optional=True)
    profile = await request.app[CONVERSION_PROFILES].deprecate(
        caller(request), sensor_id, profile_id
    )
    return json_response(profile)


@routes.get("/api/v1/backfills/{backfill_id}", name="get_backfill")
async def get_backfill(request: web.Request) -> web.Response:
    backfill_id = parse_path_uuid(request, "backfill_id")
    parse_query(request, NoQuery)
    return json_response(await request.app[BACKFILLS].get(caller(request), backfill_id))
