"""The browser's session routes: log in and out, refresh, who am I."""

from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.http import json_response, parse_body
from backend_common.ratelimit import enforce
from gateway_service.appkeys import (
    GATEWAY_SETTINGS,
    LOGIN_LIMIT_BY_ADDRESS,
    LOGIN_LIMIT_BY_USERNAME,
    REFRESHES,
)
from gateway_service.models import LoginIn
from gateway_service.security import check_csrf, check_login_origin
from gateway_service.session import REFRESH_COOKIE, clear_session, set_session
from gateway_service.upstream import call_auth, refresh_session, session_token

routes = web.RouteTableDef()


async def _start_session(request: web.Request, tokens: dict, body: dict) -> web.Response:
    response = json_response(body, headers={"Cache-Control": "no-store"})
    set_session(response, tokens, request.app[GATEWAY_SETTINGS])
    return response


@routes.post("/auth/login", name="login")
async def login(request: web.Request) -> web.Response:
    check_login_origin(request)
    body = await parse_body(request, LoginIn)
    enforce(request.app[LOGIN_LIMIT_BY_ADDRESS], request.remote or "unknown")
    enforce(request.app[LOGIN_LIMIT_BY_USERNAME], body.username.lower())
    tokens = await call_auth(request, "POST", "/api/v1/auth/login", json=body.model_dump())
    me = await call_auth(request, "GET", "/api/v1/auth/me", token=tokens["access_token"])
    return await _start_session(request, tokens, me)


@routes.post("/auth/refresh", name="refresh")
async def refresh(request: web.Request) -> web.Response:
    check_csrf(request)
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if not refresh_token:
        raise ProblemError(401, "unauthorized", "No session: log in first.")
    tokens = await refresh_session(request, refresh_token)
    return await _start_session(request, tokens, {"expires_in": tokens["expires_in"]})


@routes.post("/auth/logout", name="logout")
async def logout(request: web.Request) -> web.Response:
    check_csrf(request)
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if refresh_token:
        await call_auth(
            request, "POST", "/api/v1/auth/logout", json={"refresh_token": refresh_token}
        )
        request.app[REFRESHES].forget(refresh_token)
    response = web.Response(status=204)
    clear_session(response, secure=request.app[GATEWAY_SETTINGS].cookie_secure)
    return response


@routes.get("/auth/me", name="me")
async def me(request: web.Request) -> web.Response:
    session = await session_token(request)
    body = await call_auth(request, "GET", "/api/v1/auth/me", token=session.access_token)
    response = json_response(body)
    session.renew_cookies(response)
    return response
