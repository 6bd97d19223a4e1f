from aiohttp import web

from auth_service.api.callers import principal
from auth_service.appkeys import ACCOUNTS, CLIENT_ADDRESSES, PROJECTS, SIGNING_KEYS
from auth_service.models import (
    LoginIn,
    MeOut,
    MeProjectOut,
    PasswordChangeIn,
    PasswordResetConfirmIn,
    PasswordResetRequestIn,
    RefreshIn,
    RegisterIn,
    TokenOut,
    UserOut,
)
from backend_common.auth import CALLER
from backend_common.http import json_response, parse_body
from backend_common.pagination import MAX_LIMIT, PageRequest

routes = web.RouteTableDef()

# No access token needed for these (the middleware checks every other route).
PUBLIC_ROUTES = frozenset(
    {"register", "login", "refresh", "logout", "request_password_reset", "reset_password", "jwks"}
)


def _client(request: web.Request) -> str | None:
    return request.app[CLIENT_ADDRESSES].of(request)


@routes.post("/api/v1/auth/register", name="register")
async def register(request: web.Request) -> web.Response:
    body = await parse_body(request, RegisterIn)
    user = await request.app[ACCOUNTS].register(body, client=_client(request))
    return json_response(UserOut.from_domain(user), status=201)


@routes.post("/api/v1/auth/login", name="login")
async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, LoginIn)
    pair = await request.app[ACCOUNTS].login(body, client=_client(request))
    return json_response(TokenOut.from_domain(pair), headers={"Cache-Control": "no-store"})


@routes.post("/api/v1/auth/refresh", name="refresh")
async def refresh(request: web.Request) -> web.Response:
    body = await parse_body(request, RefreshIn)
    pair = await request.app[ACCOUNTS].refresh(body.refresh_token)
    return json_response(TokenOut.from_domain(pair), headers={"Cache-Control": "no-store"})


@routes.post("/api/v1/auth/logout", name="logout")
async def logout(request: web.Request) -> web.Response:
    body = await parse_body(request, RefreshIn)
    await request.app[ACCOUNTS].logout(body.refresh_token)
    return web.Response(status=204)


@routes.get("/api/v1/auth/me", name="me")
async def me(request: web.Request) -> web.Response:
    caller = principal(request)
    user = await request.app[ACCOUNTS].me(caller.user_id)
    projects = await request.app[PROJECTS].list_mine(
        caller=caller, q=None, page=PageRequest(limit=MAX_LIMIT)
    )
    return json_response(
        MeOut(
            **UserOut.from_domain(user).model_dump(),
            projects=[MeProjectOut(id=p.id, name=p.name, role=p.role) for p in projects.items],
        )
    )


@routes.post("/api/v1/auth/password", name="change_password")
async def change_password(request: web.Request) -> web.Response:
    body = await parse_body(request, PasswordChangeIn)
    await request.app[ACCOUNTS].change_password(
        caller=principal(request), session_id=request[CALLER].session_id, data=body
    )
    return web.Response(status=204)


@routes.post("/api/v1/auth/password-reset", name="request_password_reset")
async def request_password_reset(request: web.Request) -> web.Response:
    body = await parse_body(request, PasswordResetRequestIn)
    request.app[ACCOUNTS].request_password_reset(body.email, client=_client(request))
    return web.Response(status=202)


@routes.post("/api/v1/auth/password-reset/confirm", name="reset_password")
async def reset_password(request: web.Request) -> web.Response:
    body = await parse_body(request, PasswordResetConfirmIn)
    await request.app[ACCOUNTS].reset_password(body, client=_client(request))
    return web.Response(status=204)


@routes.get("/.well-known/jwks.json", name="jwks")
async def jwks(request: web.Request) -> web.Response:
    return json_response(
        request.app[SIGNING_KEYS].jwks(), headers={"Cache-Control": "public, max-age=300"}
    )
