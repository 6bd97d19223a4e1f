"""What the gateway keeps on its app, built in `app.py` and read only by the handlers in `api/`."""

from aiohttp import web

from backend_common.ratelimit import TokenBuckets
from gateway_service.browser.security import Origins
from gateway_service.browser.session import Sessions
from gateway_service.upstream.auth import AuthClient
from gateway_service.upstream.forward import Forwarder

ORIGINS = web.AppKey("origins", Origins)
SESSIONS = web.AppKey("sessions", Sessions)
AUTH = web.AppKey("auth", AuthClient)
FORWARDER = web.AppKey("forwarder", Forwarder)
LOGIN_LIMIT_BY_ADDRESS = web.AppKey("login_limit_by_address", TokenBuckets)
LOGIN_LIMIT_BY_USERNAME = web.AppKey("login_limit_by_username", TokenBuckets)
API_LIMIT_BY_SESSION = web.AppKey("api_limit_by_session", TokenBuckets)
