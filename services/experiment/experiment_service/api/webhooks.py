from datetime import timedelta

from aiohttp import web

from backend_common.http import json_response, parse_body, parse_path_uuid, parse_query
from backend_common.idempotency import idempotent
from backend_common.rbac import caller
from experiment_service.api.listing import page_response
from experiment_service.appkeys import WEBHOOKS
from experiment_service.models import (
    DELIVERY_LIST_REPEATED,
    DeliveryListQuery,
    NoFields,
    SecretRotation,
    WebhookCreate,
    WebhookListQuery,
    WebhookUpdate,
)

routes = web.RouteTableDef()

WEBHOOK_PATH = "/api/v1/webhooks/{webhook_id}"
NO_STORE = {"Cache-Control": "no-store"}


@routes.post("/api/v1/webhooks", name="create_webhook")
@idempotent(secrets=("secret",))
async def create_webhook(request: web.Request) -> web.Response:
    body = await parse_body(request, WebhookCreate)
    subscription = await request.app[WEBHOOKS].create(caller(request), body)
    return json_response(
        subscription,
        status=201,
        headers={"Location": f"/api/v1/webhooks/{subscription.id}", **NO_STORE},
    )


@routes.get("/api/v1/webhooks", name="list_webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    query = parse_query(request, WebhookListQuery)
    page = await request.app[WEBHOOKS].list_page(caller(request), query.project_id, query.page)
    return page_response(page)


@routes.get(WEBHOOK_PATH, name="get_webhook")
async def get_webhook(request: web.Request) -> web.Response:
    webhook_id = parse_path_uuid(request, "webhook_id")
    return json_response(await request.app[WEBHOOKS].get(caller(request), webhook_id))


@routes.patch(WEBHOOK_PATH, name="update_webhook")
async def update_webhook(request: web.Request) -> web.Response:
    webhook_id = parse_path_uuid(request, "webhook_id")
    body = await parse_body(request, WebhookUpdate)
    return json_response(await request.app[WEBHOOKS].update(caller(request), webhook_id, body))


@routes.delete(WEBHOOK_PATH, name="delete_webhook")
async def delete_webhook(request: web.Request) -> web.Response:
    webhook_id = parse_path_uuid(request, "webhook_id")
    await request.app[WEBHOOKS].delete(caller(request), webhook_id)
    return web.Response(status=204)


@routes.post(WEBHOOK_PATH + "/rotate-secret", name="rotate_webhook_secret")
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    webhook_id = parse_path_uuid(request, "webhook_id")
    body = await parse_body(request, SecretRotation, optional=True)
    subscription = await request.app[WEBHOOKS].rotate_secret(
        caller(request), webhook_id, grace=timedelta(seconds=body.grace_seconds)
    )
    return json_response(subscription, headers=NO_STORE)


@routes.post(WEBHOOK_PATH + "/ping", name="ping_webhook")
async def ping_webhook(request: web.Request) -> web.Response:
    webhook_id = parse_path_uuid(request, "webhook_id")
    await parse_body(request, NoFields, optional=True)
    delivery = await request.app[WEBHOOKS].ping(caller(request), webhook_id)
    return json_response(delivery, status=202)


@routes.get(WEBHOOK_PATH + "/deliveries", name="list_webhook_deliveries")
async def list_webhook_deliveries(request: web.Request) -> web.Response:
    webhook_id = parse_path_uuid(request, "webhook_id")
    query = parse_query(request, DeliveryListQuery, repeated=DELIVERY_LIST_REPEATED)
    page = await request.app[WEBHOOKS].deliveries(
        caller(request),
        webhook_id,
        statuses=tuple(query.status),
        event_type=query.event_type,
        page=query.page,
    )
    return page_response(page)


@routes.post("/api/v1/webhooks/deliveries/{delivery_id}/redeliver", name="redeliver_webhook")
async def redeliver_webhook(request: web.Request) -> web.Response:
    delivery_id = parse_path_uuid(request, "delivery_id")
    await parse_body(request, NoFields, optional=True)
    delivery = await request.app[WEBHOOKS].redeliver(caller(request), delivery_id)
    return json_response(delivery, status=202)
