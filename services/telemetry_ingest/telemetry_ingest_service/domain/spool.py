"""A bounded on-disk spool for batches acknowledged while PostgreSQL is unreachable.

Segment files `<n>.spool` in one directory hold records: a 4-byte length, a 4-byte CRC-32 and
the batch as JSON. A record is acknowledged only after its bytes are fsynced, and a new segment's
directory entry too. A crash can leave a torn record at the end of the last segment: it was never
acknowledged, and opening the spool cuts it off. A whole record that does not decode (which its
checksum makes all but impossible) is set aside, never in the way of the others. Segments are
replayed oldest first and deleted once every record in them is stored (a replay that stops
half-way starts the segment over: the batch's ingest key makes storing it twice a no-op).

File I/O runs on a worker thread, one append at a time, so the event loop never waits on disk.
"""

import asyncio
import fcntl
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import structlog

from telemetry_ingest_service.domain.batch import Batch

_log = structlog.get_logger(__name__)

# Payload length, then a CRC-32 of the length and the payload together: a zeroed header (a file
# that grew but whose data never reached the disk) never passes for an empty record.
_HEADER = struct.Struct("<II")
_LENGTH = struct.Struct("<I")
SEGMENT_SUFFIX = ".spool"
SET_ASIDE = "set-aside"


class SpoolFull(Exception):
    """No room left (the size bound, or the disk): the batch was not acknowledged."""


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int = 8 << 20) -> None:
        self.directory = directory
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._lock = asyncio.Lock()
        self._current: Path | None = None
        self._next_number = 1
        self._size = 0
        self._lock_fd: int | None = None
        # When each segment was begun (epoch seconds); those of an earlier process by their
        # last write, which is later: their age is then a lower bound.
        self._begun: dict[str, float] = {}

    def open(self) -> None:
        """Takes the directory (one process per spool), cuts torn tails off and measures what
        is spooled."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another process uses the spool {self.directory}") from None
        segments = self.segments()
        for segment in segments:
            _cut_torn_tail(segment)
        self._size = sum(segment.stat().st_size for segment in segments)
        self._begun = {segment.name: segment.stat().st_mtime for segment in segments}
        self._next_number = int(segments[-1].stem) + 1 if segments else 1

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds since the oldest segment still spooled was begun (0 when none is)."""
        if not self._begun:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - min(self._begun.values()))

    async def seal(self) -> None:
        """Closes the current segment to appends (they start a new one), so that every existing
        segment can be replayed and removed whole."""
        async with self._lock:
            self._current = None

    def segments(self) -> list[Path]:
        """Segment files, oldest first."""
        return sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}"), key=lambda p: int(p.stem))

    async def append(self, batch: Batch) -> None:
        record = _encode(batch)
        async with self._lock:
            if self._size + len(record) > self._max_bytes:
                raise SpoolFull(f"the spool holds {self._size} bytes of {self._max_bytes}")
            begun = time.time()
            segment = await asyncio.to_thread(self._write, record)
            self._begun.setdefault(segment.name, begun)
            self._size += len(record)

    def _write(self, record: bytes) -> Path:
        """Appends the record durably; the segment it went to."""
        current = self._current
        if current is None or not current.exists() or current.stat().st_size >= self._segment_bytes:
            current = self.directory / f"{self._next_number:012d}{SEGMENT_SUFFIX}"
            self._next_number += 1
        created = not current.exists()
        fd = os.open(current, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            start = os.fstat(fd).st_size
            try:
                written = os.write(fd, record)
                if written != len(record):
                    raise OSError("short write")
                os.fsync(fd)
            except OSError as exc:
                os.ftruncate(fd, start)  # nothing half-written stays behind
                raise SpoolFull(f"could not write the spool: {exc}") from exc
        finally:
            os.close(fd)
        if created:
            _fsync_directory(self.directory)
        self._current = current
        return current

    async def read(self, segment: Path) -> list[Batch]:
        """The batches of a segment, in the order they were spooled."""
        batches, undecodable = await asyncio.to_thread(_read_segment, segment)
        for payload in undecodable:
            _log.error("spool_record_undecodable", segment=segment.name, size=len(payload))
            await self._set_aside(_frame(payload))
        return batches

    async def remove(self, segment: Path) -> None:
        """Deletes a replayed segment (sealed: no append goes to it)."""
        async with self._lock:
            self._size -= await asyncio.to_thread(_unlink, segment)
            self._begun.pop(segment.name, None)

    async def set_aside(self, batch: Batch) -> None:
        """Keeps a batch that cannot be stored (for an operator) outside the replayed segments."""
        await self._set_aside(_encode(batch))

    async def _set_aside(self, record: bytes) -> None:
        async with self._lock:
            await asyncio.to_thread(_append_synced, self.directory / SET_ASIDE, record)


def _encode(batch: Batch) -> bytes:
    payload = orjson.dumps(
        {
            "sensor_id": batch.sensor_id,
            "run_id": batch.run_id,
            "capture_session_id": batch.capture_session_id,
            "client_batch_id": batch.client_batch_id,
            "ingest_key": batch.ingest_key,
            "received_at": batch.received_at,
            "timestamps": batch.timestamps,
            "raw_values": batch.raw_values,
            "metas": batch.metas,
        }
    )
    return _frame(payload)


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), _checksum(len(payload), payload)) + payload


def _checksum(length: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_LENGTH.pack(length)))


def _decode(payload: bytes) -> Batch:
    data: dict[str, Any] = orjson.loads(payload)
    return Batch(
        sensor_id=uuid.UUID(data["sensor_id"]),
        run_id=_optional_uuid(data["run_id"]),
        capture_session_id=_optional_uuid(data["capture_session_id"]),
        client_batch_id=data["client_batch_id"],
        ingest_key=uuid.UUID(data["ingest_key"]),
        received_at=datetime.fromisoformat(data["received_at"]),
        timestamps=[datetime.fromisoformat(t) for t in data["timestamps"]],
        raw_values=data["raw_values"],
        metas=data["metas"],
    )


def _optional_uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value is not None else None


def _payloads(data: bytes) -> Iterator[bytes]:
    """The whole records of a segment, stopping at a torn or corrupt one."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
        if length == 0 or len(payload) < length or _checksum(length, payload) != crc:
            return
        yield payload
        offset += _HEADER.size + length


def _cut_torn_tail(segment: Path) -> None:
    data = segment.read_bytes()
    good = sum(_HEADER.size + len(payload) for payload in _payloads(data))
    if good < len(data):
        _log.warning("spool_torn_tail_cut", segment=segment.name, dropped_bytes=len(data) - good)
        with segment.open("r+b") as file:
            file.truncate(good)
            os.fsync(file.fileno())


def _read_segment(segment: Path) -> tuple[list[Batch], list[bytes]]:
    batches: list[Batch] = []
    undecodable: list[bytes] = []
    for payload in _payloads(segment.read_bytes()):
        try:
            batches.append(_decode(payload))
        except (ValueError, KeyError, TypeError):
            undecodable.append(payload)
    return batches, undecodable


def _unlink(path: Path) -> int:
    """Deletes the file durably; returns its size."""
    size = path.stat().st_size
    path.unlink()
    _fsync_directory(path.parent)
    return size


def _append_synced(path: Path, record: bytes) -> None:
    with path.open("ab") as file:
        file.write(record)
        file.flush()
        os.fsync(file.fileno())


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
