from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from backend_common.ratelimit import TokenBuckets
from gateway_service.settings import GatewaySettings

if TYPE_CHECKING:
    from gateway_service.proxy import Upstreams
    from gateway_service.upstream import Refreshes
    from gateway_service.upstream_http import UpstreamPool

GATEWAY_SETTINGS = web.AppKey("gateway_settings", GatewaySettings)
ALLOWED_ORIGINS = web.AppKey("allowed_origins", frozenset)
LOGIN_LIMIT_BY_ADDRESS = web.AppKey("login_limit_by_address", TokenBuckets)
LOGIN_LIMIT_BY_USERNAME = web.AppKey("login_limit_by_username", TokenBuckets)
API_LIMIT_BY_SESSION = web.AppKey("api_limit_by_session", TokenBuckets)
REFRESHES: web.AppKey["Refreshes"] = web.AppKey("refreshes")
UPSTREAM_TIMEOUT = web.AppKey("upstream_timeout", aiohttp.ClientTimeout)
UPSTREAMS: web.AppKey["Upstreams"] = web.AppKey("upstreams")
UPSTREAM_POOL: web.AppKey["UpstreamPool"] = web.AppKey("upstream_pool")
