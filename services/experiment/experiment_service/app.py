from aiohttp import web

from backend_common.app import create_base_app
from experiment_service.settings import ExperimentSettings


def create_app(settings: ExperimentSettings) -> web.Application:
    return create_base_app(settings)
