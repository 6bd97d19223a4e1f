"""The public API's reference page: the vendored Redoc bundle (docs/redoc.json says which)
rendering GET /openapi.yaml, with nothing loaded from another origin."""

from pathlib import Path

from aiohttp import web

from gateway_service.browser.security import PAGE_POLICY, REFERENCE_CSP

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"

routes = web.RouteTableDef()


@routes.get("/docs", name="api_reference")
async def api_reference(request: web.Request) -> web.FileResponse:
    request[PAGE_POLICY] = REFERENCE_CSP
    return web.FileResponse(DOCS_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@routes.get("/docs/redoc.standalone.js", name="api_reference_script")
async def api_reference_script(request: web.Request) -> web.FileResponse:
    # RFC 9239's type, whatever the platform's mimetypes table says.
    return web.FileResponse(
        DOCS_DIR / "redoc.standalone.js",
        headers={
            "Content-Type": "text/javascript; charset=utf-8",
            "Cache-Control": "public, max-age=3600",
        },
    )
