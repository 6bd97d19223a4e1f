"""The auth service's answer to each domain error: HTTP status and problem `code`."""

from auth_service.domain.errors import (
    AlreadyMember,
    ApiKeyLimit,
    ApiKeyNotAllowed,
    ApiKeyNotFound,
    EmailTaken,
    Forbidden,
    HasherBusy,
    InvalidApiKey,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidResetToken,
    LastOwner,
    MemberNotFound,
    ProjectLimit,
    ProjectNotFound,
    RefreshTokenReused,
    RegistrationClosed,
    RoleCapTooHigh,
    Throttled,
    UsernameTaken,
    UserNotFound,
    WrongPassword,
)
from backend_common.auth import INVALID_TOKEN_CHALLENGE
from backend_common.errors import ErrorMap, Problem
from backend_common.ratelimit import rate_limit_headers

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
    ProjectLimit: (409, "project_limit"),
    ApiKeyNotFound: (404, "api_key_not_found"),
    ApiKeyLimit: (409, "api_key_limit"),
    ApiKeyNotAllowed: (403, "api_key_not_allowed"),
    RoleCapTooHigh: (403, "role_cap_too_high"),
    # The same answer as a refused access token (backend_common.auth).
    InvalidApiKey: Problem(
        401, "unauthorized", headers={"WWW-Authenticate": INVALID_TOKEN_CHALLENGE}
    ),
    HasherBusy: Problem(503, "server_busy", headers={"Retry-After": "1"}),
    Throttled: Problem(
        429, "too_many_requests", headers=lambda exc: rate_limit_headers(exc.decision)
    ),
}
