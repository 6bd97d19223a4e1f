"""The auth service's answer to each domain error: HTTP status and problem `code`."""

from typing import Any

from aiohttp import web

from auth_service.domain.errors import (
    AlreadyMember,
    EmailTaken,
    Forbidden,
    HasherBusy,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidResetToken,
    LastOwner,
    MemberNotFound,
    ProjectNotFound,
    RefreshTokenReused,
    RegistrationClosed,
    Throttled,
    UsernameTaken,
    UserNotFound,
    WrongPassword,
)
from backend_common.errors import ErrorMap, Problem, ProblemError
from backend_common.ratelimit import Decision

ERROR_MAP: ErrorMap = {
    UsernameTaken: (409, "username_taken"),
    EmailTaken: (409, "email_taken"),
    RegistrationClosed: (403, "registration_closed"),
    InvalidCredentials: (401, "invalid_credentials"),
    InvalidRefreshToken: (401, "invalid_refresh_token"),
    RefreshTokenReused: (401, "refresh_token_reused"),
    WrongPassword: (403, "wrong_password"),
    InvalidResetToken: (400, "invalid_reset_token"),
    ProjectNotFound: (404, "project_not_found"),
    UserNotFound: (404, "user_not_found"),
    MemberNotFound: (404, "member_not_found"),
    AlreadyMember: (409, "already_member"),
    Forbidden: (403, "forbidden"),
    LastOwner: (409, "last_owner"),
    HasherBusy: Problem(503, "server_busy", headers={"Retry-After": "1"}),
    # Answered by `throttled_answers` below, with the headers that depend on the refusal.
    Throttled: (429, "too_many_requests"),
}


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """Retry-After and RateLimit-Limit/-Remaining/-Reset (ratelimit-headers draft 06)."""
    return {
        "Retry-After": str(decision.retry_after),
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset),
    }


@web.middleware
async def throttled_answers(request: web.Request, handler: Any) -> web.StreamResponse:
    """`429` for Throttled, with its wait in the headers (a map entry's headers are fixed)."""
    try:
        return await handler(request)
    except Throttled as exc:
        raise ProblemError(
            429, "too_many_requests", exc.detail, headers=rate_limit_headers(exc.decision)
        ) from None
