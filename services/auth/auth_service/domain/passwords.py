import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

import bcrypt

from auth_service.domain.errors import HasherBusy

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


class _Pool:
    """Threads for bcrypt with a bounded wait: past `threads` running and `queue` waiting, a new
    job is refused (HasherBusy) instead of making everyone behind it wait longer."""

    def __init__(self, *, threads: int, queue: int, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._capacity = threads + queue
        self._in_flight = 0  # running and waiting; only the event loop's thread counts

    async def run(self, work: Callable[[], T]) -> T:
        if self._in_flight >= self._capacity:
            raise HasherBusy()
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            self._in_flight -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class PasswordHasher:
    """bcrypt on small thread pools, never on the event loop. Checking a password (login) and
    hashing a new one (register, reset, change) have pools of their own, so a flood of
    registrations or resets cannot make logins wait; each pool's queue is bounded."""

    def __init__(
        self, *, rounds: int, threads: int, hash_threads: int = 1, queue: int = 16
    ) -> None:
        self._rounds = rounds
        self._checks = _Pool(threads=threads, queue=queue, name="bcrypt")
        self._hashes = _Pool(threads=hash_threads, queue=queue, name="bcrypt-hash")
        # Verified when the user does not exist, so that answer takes as long as a wrong password.
        self._dummy_hash = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self._rounds)
        hashed = await self._hashes.run(partial(bcrypt.hashpw, password.encode(), salt))
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        candidate = password.encode()
        if len(candidate) > MAX_PASSWORD_BYTES:
            # bcrypt 5 raises on such input; no stored password can be that long anyway.
            candidate = candidate[:MAX_PASSWORD_BYTES]
            password_hash = None
        stored = password_hash.encode() if password_hash else self._dummy_hash
        matches = await self._checks.run(partial(bcrypt.checkpw, candidate, stored))
        return matches and password_hash is not None

    def close(self) -> None:
        self._checks.close()
        self._hashes.close()
