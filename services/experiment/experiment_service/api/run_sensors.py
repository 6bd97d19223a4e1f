from aiohttp import web

from backend_common.http import json_response, parse_body, parse_path_uuid, parse_query
from backend_common.idempotency import idempotent
from backend_common.pagination import PageQuery
from backend_common.rbac import caller
from experiment_service.api.listing import page_response
from experiment_service.appkeys import RUN_SENSORS
from experiment_service.models import SensorBind

routes = web.RouteTableDef()

RUN_SENSORS_PATH = "/api/v1/runs/{run_id}/sensors"


@routes.post(RUN_SENSORS_PATH, name="bind_run_sensor")
@idempotent
async def bind_run_sensor(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    body = await parse_body(request, SensorBind)
    bound = await request.app[RUN_SENSORS].bind(caller(request), run_id, body.sensor_id)
    return json_response(
        bound,
        status=201,
        headers={"Location": f"/api/v1/runs/{run_id}/sensors/{body.sensor_id}"},
    )


@routes.get(RUN_SENSORS_PATH, name="list_run_sensors")
async def list_run_sensors(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    query = parse_query(request, PageQuery)
    page = await request.app[RUN_SENSORS].list_page(caller(request), run_id, query.page)
    return page_response(page)


@routes.get(RUN_SENSORS_PATH + "/{sensor_id}", name="get_run_sensor")
async def get_run_sensor(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    sensor_id = parse_path_uuid(request, "sensor_id")
    return json_response(await request.app[RUN_SENSORS].get(caller(request), run_id, sensor_id))


@routes.delete(RUN_SENSORS_PATH + "/{sensor_id}", name="unbind_run_sensor")
async def unbind_run_sensor(request: web.Request) -> web.Response:
    run_id = parse_path_uuid(request, "run_id")
    sensor_id = parse_path_uuid(request, "sensor_id")
    await request.app[RUN_SENSORS].unbind(caller(request), run_id, sensor_id)
    return web.Response(status=204)
