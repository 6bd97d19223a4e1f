from aiohttp import web

from auth_service.api.callers import principal
from auth_service.appkeys import PROJECTS
from auth_service.models import UserSearchQuery, UserSummaryOut
from backend_common.http import json_response, parse_query

routes = web.RouteTableDef()


@routes.get("/api/v1/users", name="search_users")
async def search_users(request: web.Request) -> web.Response:
    query = parse_query(request, UserSearchQuery)
    page = await request.app[PROJECTS].search_users(
        caller=principal(request), q=query.q, page=query.page
    )
    return json_response(page.map(UserSummaryOut.from_domain).as_json())
