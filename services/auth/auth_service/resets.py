"""Where password reset tokens go when no real mail sender is plugged in (see ResetSender).

Neither writes the token to the log: log lines travel to places (collectors, terminals, support
tickets) where a live reset token would let its reader take the account.
"""

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import structlog

from auth_service.domain.models import User

_log = structlog.get_logger(__name__)

CONFIRM_ROUTE = "POST /api/v1/auth/password-reset/confirm"


class LogResetSender:
    """Logs that a reset was asked for and to whom the mail would go; sends nothing."""

    async def send_reset(self, *, user: User, token: str, expires_at: datetime) -> None:
        _log.warning(
            "password_reset_requested",
            user_id=str(user.id),
            to=user.email,
            delivery="not sent: no mail sender; AUTH_RESET_MAIL_DIR keeps reset mails as files",
        )


class FileResetSender:
    """Writes each reset mail, token included, to a file of its own in `directory` (readable by
    this process's user only): the development stack's mailbox."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def send_reset(self, *, user: User, token: str, expires_at: datetime) -> None:
        sent_at = datetime.now(UTC)
        path = self._directory / f"{sent_at:%Y%m%dT%H%M%S.%fZ}-password-reset-{user.id}.eml"
        text = (
            f"To: {user.email}\n"
            f"Date: {sent_at.isoformat()}\n"
            "Subject: Reset your ETP password\n"
            "\n"
            f"Someone asked to reset the password of the ETP account {user.username!r}.\n"
            f"This token sets a new one until {expires_at.isoformat()}:\n"
            "\n"
            f"{token}\n"
            "\n"
            f'{CONFIRM_ROUTE} with {{"token": "<token>", "new_password": "<new password>"}}\n'
        )
        await asyncio.to_thread(_write_private, path, text)
        _log.info("password_reset_mail_written", user_id=str(user.id), path=str(path))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
