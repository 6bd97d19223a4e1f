from aiohttp import web

from auth_service.settings import AuthSettings
from backend_common.app import create_base_app


def create_app(settings: AuthSettings) -> web.Application:
    return create_base_app(settings)
