"""Everything under /api/ goes on to a service; the SPA's files are served from a folder."""

from pathlib import Path

from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.ratelimit import enforce
from gateway_service.appkeys import API_LIMIT_BY_SESSION, FORWARDER, ORIGINS, SESSIONS
from gateway_service.browser.tokens import session_key

routes = web.RouteTableDef()
PROXIED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def proxy_api(request: web.Request) -> web.StreamResponse:
    request.app[ORIGINS].check_csrf(request)
    session = await request.app[SESSIONS].token(request)
    bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    token = session.access_token or bearer
    if token:
        enforce(request.app[API_LIMIT_BY_SESSION], session_key(token))
    return await request.app[FORWARDER].forward(
        request, access_token=session.access_token, before_prepare=session.renew_cookies
    )


def add_proxy_routes(app: web.Application) -> None:
    # GET brings HEAD along, so a HEAD under /api/ is not taken for a page of the SPA.
    app.router.add_get("/api/{tail:.*}", proxy_api, name="proxy_get", allow_head=True)
    for method in PROXIED_METHODS:
        if method != "GET":
            app.router.add_route(
                method, "/api/{tail:.*}", proxy_api, name=f"proxy_{method.lower()}"
            )


# Longer than any page path of the SPA, and under what file systems take (PATH_MAX, NAME_MAX).
MAX_PAGE_PATH = 1024
MAX_PATH_SEGMENT = 255


def _page_path(tail: str) -> str:
    """The decoded path below the site's root, if a file could have it: no NUL (which no file
    name holds), not over-long. Anything else is 400, not a file system error."""
    if (
        "\x00" in tail
        or len(tail) > MAX_PAGE_PATH
        or any(len(segment) > MAX_PATH_SEGMENT for segment in tail.split("/"))
    ):
        raise ProblemError(400, "invalid_path", "No page has such a path.")
    return tail


# The build names every file under assets/ by a hash of its content (Vite's assetsDir): a new
# build makes new names, so browsers may keep these for good. Anything else, index.html first,
# is checked again on each use, so a new build shows at the next load.
HASHED_ASSETS = "assets/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def add_static_routes(app: web.Application, folder: Path) -> None:
    """The SPA: files of `folder`, and its index.html for any other page path."""
    root = folder.resolve()
    index = root / "index.html"

    async def spa(request: web.Request) -> web.FileResponse:
        try:
            wanted = (root / _page_path(request.match_info["tail"])).resolve()
            found = wanted.is_relative_to(root) and wanted.is_file()
        except (OSError, ValueError):  # e.g. a folder on the way that may not be read
            found = False
        if found:
            hashed = wanted.relative_to(root).as_posix().startswith(HASHED_ASSETS)
            return web.FileResponse(
                wanted, headers={"Cache-Control": IMMUTABLE if hashed else REVALIDATE}
            )
        if not index.is_file():
            raise ProblemError(404, "not_found", "No such page.")
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.router.add_get("/{tail:.*}", spa, name="spa")
