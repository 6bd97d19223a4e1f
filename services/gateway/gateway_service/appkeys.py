from typing import TYPE_CHECKING

from aiohttp import web

from backend_common.ratelimit import TokenBuckets
from gateway_service.settings import GatewaySettings

if TYPE_CHECKING:
    from gateway_service.upstream import Refreshes

GATEWAY_SETTINGS = web.AppKey("gateway_settings", GatewaySettings)
ALLOWED_ORIGINS = web.AppKey("allowed_origins", frozenset)
LOGIN_LIMIT_BY_ADDRESS = web.AppKey("login_limit_by_address", TokenBuckets)
LOGIN_LIMIT_BY_USERNAME = web.AppKey("login_limit_by_username", TokenBuckets)
API_LIMIT_BY_SESSION = web.AppKey("api_limit_by_session", TokenBuckets)
REFRESHES: web.AppKey["Refreshes"] = web.AppKey("refreshes")
