from aiohttp import web

from backend_common.app import create_base_app
from telemetry_ingest_service.settings import TelemetryIngestSettings


def create_app(settings: TelemetryIngestSettings) -> web.Application:
    return create_base_app(settings)
