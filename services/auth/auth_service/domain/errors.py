from backend_common.errors import DomainError
from backend_common.ratelimit import Decision


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


class ProjectLimit(DomainError):
    """You own as many projects as one user may; delete or hand over one first."""


class LastOwner(DomainError):
    """A project keeps at least one owner."""


class Throttled(DomainError):
    """Too many attempts: wait `decision.retry_after` seconds."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"Too many attempts; retry in {decision.retry_after} s.")
        self.decision = decision


class HasherBusy(DomainError):
    """Too many passwords are being checked or hashed right now; try again in a moment."""


class InvalidApiKey(DomainError):
    """The API key is malformed, unknown, revoked or expired."""


class ApiKeyNotFound(DomainError):
    """No such API key."""


class ApiKeyLimit(DomainError):
    """You have as many API keys as one user may; revoke one first."""


class ApiKeyNotAllowed(DomainError):
    """An API key cannot do this: sign in with your password."""


class RoleCapTooHigh(DomainError):
    """A key's role cap cannot be above your own role in its project."""
