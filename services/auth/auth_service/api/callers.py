"""Who calls a route, as the domain sees it."""

from aiohttp import web

from auth_service.domain.models import Principal
from backend_common.auth import CALLER


def principal(request: web.Request) -> Principal:
    """The authenticated caller (the auth middleware ran), with their API key's scope if any."""
    claims = request[CALLER]
    return Principal(user_id=claims.user_id, key=claims.api_key)
