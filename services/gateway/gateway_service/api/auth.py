"""The browser's session routes: log in and out, refresh, who am I."""

from typing import Any

from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.http import json_response, parse_body
from backend_common.keys import REQUEST_ID
from backend_common.ratelimit import enforce
from gateway_service.appkeys import (
    AUTH,
    LOGIN_LIMIT_BY_ADDRESS,
    LOGIN_LIMIT_BY_USERNAME,
    ORIGINS,
    SESSIONS,
)
from gateway_service.browser.cookies import REFRESH_COOKIE
from gateway_service.models import LoginIn
from gateway_service.upstream.auth import Tokens
from gateway_service.upstream.forward import forwarded_for

routes = web.RouteTableDef()


def _start_session(request: web.Request, tokens: Tokens, body: Any) -> web.Response:
    response = json_response(body, headers={"Cache-Control": "no-store"})
    request.app[SESSIONS].cookies.set(response, tokens)
    return response


@routes.post("/auth/login", name="browser_login")
async def login(request: web.Request) -> web.Response:
    request.app[ORIGINS].check_login(request)
    body = await parse_body(request, LoginIn)
    enforce(request.app[LOGIN_LIMIT_BY_ADDRESS], request.remote or "unknown")
    enforce(request.app[LOGIN_LIMIT_BY_USERNAME], body.username.lower())
    auth = request.app[AUTH]
    tokens = await auth.login(
        body.model_dump(), request_id=request[REQUEST_ID], forwarded_for=forwarded_for(request)
    )
    me = await auth.me(tokens["access_token"], request_id=request[REQUEST_ID])
    return _start_session(request, tokens, me)


@routes.post("/auth/refresh", name="browser_refresh")
async def refresh(request: web.Request) -> web.Response:
    request.app[ORIGINS].check_csrf(request)
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if not refresh_token:
        raise ProblemError(401, "unauthorized", "No session: log in first.")
    tokens = await request.app[SESSIONS].refresh(request, refresh_token)
    return _start_session(request, tokens, {"expires_in": tokens["expires_in"]})


@routes.post("/auth/logout", name="browser_logout")
async def logout(request: web.Request) -> web.Response:
    request.app[ORIGINS].check_csrf(request)
    sessions = request.app[SESSIONS]
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if refresh_token:
        await sessions.log_out(refresh_token, request_id=request[REQUEST_ID])
    response = web.Response(status=204)
    sessions.cookies.clear(response)
    return response


@routes.get("/auth/me", name="browser_me")
async def me(request: web.Request) -> web.Response:
    session = await request.app[SESSIONS].token(request)
    body = await request.app[AUTH].me(session.access_token, request_id=request[REQUEST_ID])
    response = json_response(body)
    session.renew_cookies(response)
    return response
