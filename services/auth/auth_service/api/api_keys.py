from aiohttp import web

from auth_service.api.callers import principal
from auth_service.api.clients import ClientAddresses
from auth_service.appkeys import API_KEYS
from auth_service.domain.api_keys import ApiKeys
from auth_service.models import ApiKeyCreate, ApiKeyCreatedOut, ApiKeyGrantOut, ApiKeyOut
from backend_common.api_keys import INTROSPECTION_PATH, key_claims
from backend_common.auth import AccessClaims
from backend_common.http import json_response, parse_body, parse_path_uuid, parse_query
from backend_common.idempotency import idempotent
from backend_common.pagination import PageQuery

routes = web.RouteTableDef()

NO_STORE = {"Cache-Control": "no-store"}


class LocalApiKeys:
    """The auth service checks the API keys sent to it itself (the auth middleware's
    ApiKeyVerifier); refusals are counted per client address."""

    def __init__(self, keys: ApiKeys, addresses: ClientAddresses) -> None:
        self._keys = keys
        self._addresses = addresses

    async def verify(self, key: str, request: web.Request) -> AccessClaims:
        stored = await self._keys.authenticate(key, client=self._addresses.of(request))
        return key_claims(key, user_id=stored.user_id, scope=stored.scope)


@routes.post("/api/v1/api-keys", name="create_api_key")
@idempotent(secrets=("key",))
async def create_api_key(request: web.Request) -> web.Response:
    body = await parse_body(request, ApiKeyCreate)
    key = await request.app[API_KEYS].create(principal(request), body)
    return json_response(
        ApiKeyCreatedOut.from_domain(key),
        status=201,
        headers={"Location": f"/api/v1/api-keys/{key.id}", **NO_STORE},
    )


@routes.get("/api/v1/api-keys", name="list_api_keys")
async def list_api_keys(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    page = await request.app[API_KEYS].list(principal(request), page=query.page)
    return json_response(page.map(ApiKeyOut.from_domain).as_json())


@routes.delete("/api/v1/api-keys/{api_key_id}", name="revoke_api_key")
async def revoke_api_key(request: web.Request) -> web.Response:
    await request.app[API_KEYS].revoke(principal(request), parse_path_uuid(request, "api_key_id"))
    return web.Response(status=204)


@routes.get(INTROSPECTION_PATH, name="introspect_api_key")
async def introspect_api_key(request: web.Request) -> web.Response:
    caller = principal(request)
    scope = request.app[API_KEYS].introspect(caller)
    return json_response(ApiKeyGrantOut.from_scope(scope, user_id=caller.user_id), headers=NO_STORE)
