from backend_common.errors import DomainError, ErrorMap


class UsernameTaken(DomainError):
    """That username is taken."""


class EmailTaken(DomainError):
    """That email address is already registered."""


class RegistrationClosed(DomainError):
    """Registration is closed on this installation."""


class InvalidCredentials(DomainError):
    """Wrong username, email or password."""


class InvalidRefreshToken(DomainError):
    """The refresh token is unknown, expired or revoked."""


class RefreshTokenReused(DomainError):
    """The refresh token was already used; its whole session is now revoked."""


class WrongPassword(DomainError):
    """The current password is wrong."""


class InvalidResetToken(DomainError):
    """The password reset token is unknown, used or expired."""


class ProjectNotFound(DomainError):
    """No such project."""


class UserNotFound(DomainError):
    """No such user."""


class MemberNotFound(DomainError):
    """That user is not a member of the project."""


class AlreadyMember(DomainError):
    """That user is already a member of the project."""


class Forbidden(DomainError):
    """Your role in this project does not allow that."""


class LastOwner(DomainError):
    """A project keeps at least one owner."""


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
}
