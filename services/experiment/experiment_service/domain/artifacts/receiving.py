"""Taking an upload's bytes in: hashed and written as they arrive, never held whole."""

import asyncio
import hashlib
from collections.abc import AsyncIterable, Callable, Sequence

import orjson

from experiment_service.domain.artifacts.models import NewArtifact, UploadKey
from experiment_service.domain.errors import StorageFull, StorageUnavailable
from experiment_service.storage.base import PendingObject, StorageError

# Raised when the bytes so far pass a limit: the size so far is given.
Limit = Callable[[int], None]


def new_digest() -> "hashlib._Hash":
    return hashlib.sha256()


async def receive(
    body: AsyncIterable[Sequence[bytes]],
    pending: PendingObject | None,
    digest: "hashlib._Hash",
    *,
    limit: Limit,
) -> tuple[str, int]:
    """Writes `body` (batches of pieces as they arrived) to `pending`, which feeds it to
    `digest` (None: only hashes it); the sha256 (hex) and the size.

    Batch n is hashed and written (off the event loop) while batch n + 1 is received.
    `limit(size)` runs before each batch is kept, so nothing past a limit is written.
    """
    size = 0
    keeping: asyncio.Future[None] | None = None
    try:
        async for pieces in body:
            size += sum(len(piece) for piece in pieces)
            limit(size)
            if keeping is not None:
                await keeping
            keeping = asyncio.ensure_future(_keep(digest, pending, pieces))
        if keeping is not None:
            await keeping
    except StorageError as exc:
        raise storage_failure(exc) from exc
    finally:
        # Whatever failed, the batch being written lands before the object is discarded.
        if keeping is not None and not keeping.done():
            await asyncio.wait([keeping])
        if keeping is not None and not keeping.cancelled():
            keeping.exception()
    return digest.hexdigest(), size


async def _keep(
    digest: "hashlib._Hash", pending: PendingObject | None, pieces: Sequence[bytes]
) -> None:
    if pending is None:
        await asyncio.to_thread(_update, digest, pieces)
    else:
        await pending.write(pieces)


def _update(digest: "hashlib._Hash", pieces: Sequence[bytes]) -> None:
    for piece in pieces:
        digest.update(piece)


def storage_failure(exc: StorageError) -> StorageFull | StorageUnavailable:
    return StorageFull(str(exc)) if exc.full else StorageUnavailable(str(exc))


def fingerprint(key: UploadKey, new: NewArtifact, sha256: str) -> bytes:
    """What makes two keyed uploads the same request: the request line, what the upload says of
    itself (the name may come from a form part), and the content's hash."""
    return hashlib.sha256(
        b"\n".join(
            [
                key.request,
                new.name.encode(),
                new.type.encode(),
                new.content_type.encode(),
                orjson.dumps(new.metadata, option=orjson.OPT_SORT_KEYS),
                sha256.encode(),
            ]
        )
    ).digest()
