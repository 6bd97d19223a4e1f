"""Typed keys for what backend_common puts on the app and on requests."""

from aiohttp import ClientSession, web

from backend_common.db import Database
from backend_common.settings import ServiceSettings

SETTINGS = web.AppKey("settings", ServiceSettings)
DATABASE = web.AppKey("database", Database)
HTTP_CLIENT = web.AppKey("http_client", ClientSession)
REQUEST_ID = web.RequestKey("request_id", str)
