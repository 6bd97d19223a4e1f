from aiohttp import web

from auth_service.appkeys import PROJECTS
from auth_service.models import UserSearchQuery, UserSummaryOut
from backend_common.http import json_response, parse_query

routes = web.RouteTableDef()


@routes.get("/api/v1/users", name="search_users")
async def search_users(request: web.Request) -> web.Response:
    query = parse_query(request, UserSearchQuery)
    rows, next_cursor = await request.app[PROJECTS].search_users(
        q=query.q, cursor=query.cursor, limit=query.limit
    )
    items = [UserSummaryOut(id=user_id, username=username) for user_id, username in rows]
    return json_response({"items": items, "next_cursor": next_cursor})
