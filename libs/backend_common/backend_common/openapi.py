from pathlib import Path

import yaml
from aiohttp import web

from backend_common.keys import SETTINGS


async def openapi_spec(request: web.Request) -> web.Response:
    path = request.app[SETTINGS].published_openapi_path()
    return web.Response(body=path.read_bytes(), content_type="application/yaml")


def load_spec(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)
