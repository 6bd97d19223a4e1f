"""What the artifact rules need of an object store, whatever keeps the bytes.

An upload is written to a pending object that readers cannot see, published under its key once
complete (before the artifact's row commits), and closed after the commit. A crash between
publishing and committing leaves an object without a row; `sweep` removes those, and pending
objects nobody writes any more, never one that a live upload still owns.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Which of the given keys still have an artifact row.
KnownKeys = Callable[[Sequence[str]], Awaitable[set[str]]]


class StorageError(Exception):
    """The object store failed (an I/O error, an unreachable or refusing server); `full`: it
    has no room left."""

    def __init__(self, message: str, *, full: bool = False) -> None:
        super().__init__(message)
        self.full = full


class Digest(Protocol):
    """A running hash (hashlib's): the store feeds it every byte it writes, in order, in the
    same thread hop as the write (one hand-off per batch of pieces, not two)."""

    def update(self, data: bytes, /) -> None: ...


class PendingObject(Protocol):
    async def write(self, pieces: Sequence[bytes]) -> None:
        """Appends the pieces, in order (and feeds them to the object's digest)."""

    async def publish(self) -> None:
        """Makes the object readable under its key, durably."""

    async def discard(self) -> None:
        """Removes what was written, published or not."""

    async def close(self) -> None:
        """Done with it (after its row committed, or after `discard`)."""


class ObjectStore(Protocol):
    async def create(self, key: str, digest: Digest) -> PendingObject:
        """A new pending object for `key`, whose bytes go through `digest` too."""

    def read(self, key: str, start: int, stop: int) -> AsyncIterator[bytes]:
        """Bytes `start` to `stop` (exclusive) of a published object."""

    async def delete(self, key: str) -> None:
        """Removes the object; one that is not there is fine."""

    def local_file(self, key: str) -> Path | None:
        """The file holding a published object, when the store keeps it on this machine's
        disk: downloads then go out with sendfile, never through Python."""

    async def sweep(self, known: KnownKeys) -> "SweepReport":
        """Removes abandoned pending objects and published objects without a row."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SweepReport:
    pending_removed: int = 0
    orphans_removed: int = 0
    objects_seen: int = 0
