from aiohttp import web

from backend_common.app import create_base_app
from gateway_service.settings import GatewaySettings


def create_app(settings: GatewaySettings) -> web.Application:
    return create_base_app(settings)
