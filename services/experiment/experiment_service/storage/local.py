"""Artifacts on the local file system, under one folder:

    pending/<key>.<random>   being written; its writer holds an exclusive flock on it
    objects/<k0k1>/<key>     published (renamed from pending/, the writer's lock going along)

The writer keeps its lock from the first byte until the artifact's row has committed (`close`),
and the kernel drops it when the process dies, however it dies. So the sweep knows exactly what is
abandoned: a pending file, or an object without a row, that it can lock. It never needs a grace
period, and other processes on the same folder (workers, replicas) lose nothing to it.
"""

import asyncio
import errno
import fcntl
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import structlog

from experiment_service.storage.base import Digest, KnownKeys, StorageError, SweepReport

_log = structlog.get_logger(__name__)

_KEY = re.compile(r"[0-9a-f]{32}")
READ_CHUNK = 1024 * 1024
_SWEEP_BATCH = 1000
# Buffers one writev takes (the kernel's IOV_MAX is 1024).
_MAX_IOV = 512


def _check_key(key: str) -> str:
    # Keys are artifact ids made by the server; anything else never becomes a path.
    if not _KEY.fullmatch(key):
        raise ValueError(f"not an object key: {key!r}")
    return key


def _failed(doing: str, exc: OSError) -> StorageError:
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return StorageError(f"cannot {doing} the artifact: {exc.strerror}", full=full)


def _digest_and_write(digest: Digest, fd: int, pieces: Sequence[bytes]) -> None:
    """The pieces as received, hashed and written without joining them first (a copy less)."""
    for piece in pieces:
        digest.update(piece)
    for start in range(0, len(pieces), _MAX_IOV):
        batch = pieces[start : start + _MAX_IOV]
        written = os.writev(fd, batch)
        for piece in batch:  # the rest of a short write (rare on a regular file)
            if written >= len(piece):
                written -= len(piece)
                continue
            view = memoryview(piece)[written:]
            written = 0
            while view:
                view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_lock(path: Path) -> int | None:
    """An fd of `path` holding its exclusive lock, or None while someone else holds it (or the
    file is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _unlink_locked(path: Path, fd: int) -> bool:
    """Removes `path` if it is still the file `fd` (locked) is open on; closes `fd`."""
    try:
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            return False
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)


class LocalPending:
    def __init__(self, fd: int, pending: Path, final: Path, digest: Digest, *, fsync: bool) -> None:
        self._fd: int | None = fd
        self._digest = digest
        self._pending = pending
        self._final = final
        self._fsync = fsync
        self._published = False

    async def write(self, pieces: Sequence[bytes]) -> None:
        assert self._fd is not None
        try:
            await asyncio.to_thread(_digest_and_write, self._digest, self._fd, pieces)
        except OSError as exc:
            raise _failed("write", exc) from exc

    async def publish(self) -> None:
        try:
            await asyncio.to_thread(self._publish)
        except OSError as exc:
            raise _failed("store", exc) from exc

    def _publish(self) -> None:
        assert self._fd is not None
        if self._fsync:
            os.fsync(self._fd)
        self._final.parent.mkdir(exist_ok=True)
        os.rename(self._pending, self._final)
        self._published = True
        if self._fsync:
            _fsync_dir(self._final.parent)

    async def discard(self) -> None:
        path = self._final if self._published else self._pending
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await self.close()

    async def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock
            self._fd = None


class LocalStore:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self._root = root
        self._pending = root / "pending"
        self._objects = root / "objects"
        self._fsync = fsync

    async def open(self) -> None:
        def make() -> None:
            self._pending.mkdir(parents=True, exist_ok=True)
            self._objects.mkdir(exist_ok=True)

        await asyncio.to_thread(make)

    async def close(self) -> None:
        pass

    def object_path(self, key: str) -> Path:
        return self._objects / key[:2] / _check_key(key)

    def local_file(self, key: str) -> Path:
        return self.object_path(key)

    async def create(self, key: str, digest: Digest) -> LocalPending:
        final = self.object_path(key)
        try:
            fd, pending = await asyncio.to_thread(self._new_pending, key)
        except OSError as exc:
            raise _failed("create", exc) from exc
        return LocalPending(fd, pending, final, digest, fsync=self._fsync)

    def _new_pending(self, key: str) -> tuple[int, Path]:
        while True:
            path = self._pending / f"{key}.{secrets.token_hex(4)}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A sweep may have taken the new file for abandoned before it was locked.
            try:
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    return fd, path
            except FileNotFoundError:
                pass
            os.close(fd)

    async def read(self, key: str, start: int, stop: int) -> AsyncIterator[bytes]:
        path = self.object_path(key)
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
        except OSError as exc:
            raise _failed("open", exc) from exc
        try:
            position = start
            while position < stop:
                data = await asyncio.to_thread(
                    os.pread, fd, min(READ_CHUNK, stop - position), position
                )
                if not data:
                    raise StorageError("the stored artifact is shorter than recorded")
                position += len(data)
                yield data
        finally:
            os.close(fd)

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self.object_path(key).unlink, missing_ok=True)
        except OSError as exc:
            raise _failed("delete", exc) from exc

    async def sweep(self, known: KnownKeys) -> SweepReport:
        pending_removed = await asyncio.to_thread(self._sweep_pending)
        seen = removed = 0
        for batch in await asyncio.to_thread(lambda: list(self._object_batches())):
            seen += len(batch)
            with_rows = await known(batch)
            for key in batch:
                if key not in with_rows and await self._remove_orphan(key, known):
                    removed += 1
        return SweepReport(
            pending_removed=pending_removed, orphans_removed=removed, objects_seen=seen
        )

    def _sweep_pending(self) -> int:
        removed = 0
        for path in self._pending.iterdir():
            if not path.is_file():
                continue
            fd = _try_lock(path)
            if fd is not None and _unlink_locked(path, fd):
                removed += 1
        return removed

    def _object_batches(self) -> Iterator[list[str]]:
        batch: list[str] = []
        for folder in sorted(self._objects.iterdir()):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if _KEY.fullmatch(path.name) and path.name[:2] == folder.name:
                    batch.append(path.name)
                else:
                    _log.warning("artifact_store_stray_file", path=str(path))
                if len(batch) >= _SWEEP_BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch

    async def _remove_orphan(self, key: str, known: KnownKeys) -> bool:
        path = self.object_path(key)
        fd = await asyncio.to_thread(_try_lock, path)
        if fd is None:
            return False  # its upload is still going on
        # Locked: its writer is done, committed or dead. Only the row tells which.
        try:
            if await known([key]):
                os.close(fd)
                return False
        except BaseException:
            os.close(fd)
            raise
        return await asyncio.to_thread(_unlink_locked, path, fd)
