import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

import bcrypt

# bcrypt only reads 72 bytes; longer passwords are refused at registration instead of truncated.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_CHARS = 8

T = TypeVar("T")


def password_problem(password: str) -> str | None:
    """Why `password` cannot be set, or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"must be at least {MIN_PASSWORD_CHARS} characters"
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return f"must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8"
    return None


class PasswordHasher:
    """bcrypt on a small thread pool: hashing never blocks the event loop, and a login storm
    queues for `threads` workers instead of taking every core."""

    def __init__(self, *, rounds: int, threads: int) -> None:
        self._rounds = rounds
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bcrypt")
        # Verified when the user does not exist, so that answer takes as long as a wrong password.
        self._dummy_hash = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self._rounds)
        hashed = await self._run(partial(bcrypt.hashpw, password.encode(), salt))
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        candidate = password.encode()
        if len(candidate) > MAX_PASSWORD_BYTES:
            # bcrypt 5 raises on such input; no stored password can be that long anyway.
            candidate = candidate[:MAX_PASSWORD_BYTES]
            password_hash = None
        stored = password_hash.encode() if password_hash else self._dummy_hash
        matches = await self._run(partial(bcrypt.checkpw, candidate, stored))
        return matches and password_hash is not None

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
