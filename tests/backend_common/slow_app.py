"""A service with one slow route, run as a real process by test_shutdown.py.

Usage: python -m tests.backend_common.slow_app PORT
"""

import asyncio
import sys

import structlog
from aiohttp import web

from backend_common.app import create_base_app
from backend_common.http import json_response
from backend_common.runner import run_service
from backend_common.settings import ServiceSettings

SLOW_SECONDS = 1.5

_log = structlog.get_logger(__name__)


async def slow(request: web.Request) -> web.Response:
    _log.info("slow_request_started")
    await asyncio.sleep(SLOW_SECONDS)
    return json_response({"slept": SLOW_SECONDS})


def create_app(settings: ServiceSettings) -> web.Application:
    app = create_base_app(settings)
    # POST: aiohttp clients retry a GET cut by the server, hiding the cut behind "cannot connect".
    app.router.add_post("/slow", slow, name="slow")
    return app


if __name__ == "__main__":
    run_service(ServiceSettings(service_name="gateway", port=int(sys.argv[1])), create_app)
