"""The client's errors, each with the exit code the `etp` command ends with."""

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    OTHER = 1  # anything else, e.g. 400/422: the server refused the input
    USAGE = 2  # bad arguments, no URL or API key configured
    NOT_FOUND = 3  # 404, 410
    AUTH = 4  # 401, 403
    CONFLICT = 5  # 409, 412
    UNAVAILABLE = 6  # 5xx, 429 after the retries, no connection


def exit_code_for(status: int | None) -> ExitCode:
    """The exit code for an HTTP status (None: no answer at all)."""
    if status is None or status >= 500 or status == 429:
        return ExitCode.UNAVAILABLE
    if status in (404, 410):
        return ExitCode.NOT_FOUND
    if status in (401, 403):
        return ExitCode.AUTH
    if status in (409, 412):
        return ExitCode.CONFLICT
    return ExitCode.OTHER


class EtpError(Exception):
    """Base of every error the client raises: a `code` (stable, like the API's), a `detail` for
    people, and the exit code of the command."""

    default_code = "error"
    default_exit_code = ExitCode.OTHER

    def __init__(
        self, detail: str, *, code: str | None = None, exit_code: ExitCode | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.exit_code = self.default_exit_code if exit_code is None else exit_code

    def as_dict(self) -> dict[str, Any]:
        """The error as `--json` prints it."""
        return {"status": None, "code": self.code, "detail": self.detail, "request_id": None}


class UsageError(EtpError):
    """The command or call cannot run as given."""

    default_code = "usage"
    default_exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """No URL or API key, or an unreadable config file."""

    default_code = "not_configured"


class ChecksumMismatch(EtpError):
    """A file's SHA-256 or size is not what the other side has."""

    default_code = "checksum_mismatch"


class ApiError(EtpError):
    """The API answered with an error (an RFC 9457 problem), or did not answer at all
    (`status` None, `code` "unreachable")."""

    def __init__(
        self,
        status: int | None,
        code: str,
        detail: str,
        *,
        request_id: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, code=code, exit_code=exit_code_for(status))
        self.status = status
        self.request_id = request_id
        self.errors = errors
        self.retry_after = retry_after

    def __str__(self) -> str:
        head = f"{self.status} {self.code}" if self.status is not None else self.code
        tail = f" (request_id {self.request_id})" if self.request_id else ""
        return f"{head}: {self.detail}{tail}"

    def as_dict(self) -> dict[str, Any]:
        """The error as `--json` prints it."""
        out: dict[str, Any] = {
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "request_id": self.request_id,
        }
        if self.errors:
            out["errors"] = self.errors
        return out


def is_transient(error: ApiError) -> bool:
    """Worth sending again: no answer, too many requests, a timeout, the server's trouble."""
    return error.status is None or error.status in (408, 429) or error.status >= 500
