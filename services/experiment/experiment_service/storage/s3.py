"""Artifacts in an S3-compatible object store (AWS S3, MinIO, Ceph, ...), through aiobotocore.

An object is written as a multipart upload in parts of `part_size` (one PUT when it is smaller),
invisible until the upload completes: an interrupted one leaves no object, only uploaded parts,
which `sweep` aborts. Several replicas share a bucket and an upload leaves no sign of which one
owns it, so the sweep touches unfinished uploads and objects without a row only once they are
older than `grace_seconds` (a bucket lifecycle rule that aborts incomplete multipart uploads does
the same job; docs/artifacts.md).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from experiment_service.storage.base import Digest, KnownKeys, StorageError, SweepReport

_log = structlog.get_logger(__name__)

READ_CHUNK = 1024 * 1024
_FAILURES = (BotoCoreError, ClientError, OSError, TimeoutError)


def _failed(doing: str, exc: BaseException) -> StorageError:
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    full = code in ("EntityTooLarge", "QuotaExceeded", "XMinioStorageFull")
    return StorageError(f"cannot {doing} the artifact in object storage: {code or exc}", full=full)


def _update(digest: Digest, pieces: Sequence[bytes]) -> None:
    for piece in pieces:
        digest.update(piece)


class S3Pending:
    def __init__(self, client: Any, bucket: str, key: str, part_size: int, digest: Digest) -> None:
        self._client = client
        self._digest = digest
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._published = False

    async def write(self, pieces: Sequence[bytes]) -> None:
        await asyncio.to_thread(_update, self._digest, pieces)
        self._buffer.extend(pieces)
        self._buffered += sum(len(piece) for piece in pieces)
        if self._buffered >= self._part_size:
            await self._send_part()

    async def _send_part(self) -> None:
        body = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        try:
            if self._upload_id is None:
                started = await self._client.create_multipart_upload(
                    Bucket=self._bucket, Key=self._key
                )
                self._upload_id = started["UploadId"]
            number = len(self._parts) + 1
            sent = await self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
        except _FAILURES as exc:
            raise _failed("write", exc) from exc
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    async def publish(self) -> None:
        try:
            if self._upload_id is None:
                body = b"".join(self._buffer)
                self._buffer, self._buffered = [], 0
                await self._client.put_object(Bucket=self._bucket, Key=self._key, Body=body)
            else:
                if self._buffered:
                    await self._send_part()
                await self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except StorageError:
            raise
        except _FAILURES as exc:
            raise _failed("store", exc) from exc
        self._published = True

    async def discard(self) -> None:
        self._buffer, self._buffered = [], 0
        try:
            if self._published:
                await self._client.delete_object(Bucket=self._bucket, Key=self._key)
            elif self._upload_id is not None:
                await self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )
        except _FAILURES as exc:
            # What is left is found by the sweep.
            _log.warning("artifact_discard_failed", key=self._key, error=str(exc))

    async def close(self) -> None:
        self._buffer, self._buffered = [], 0


class S3Store:
    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: str = "auto",
        part_size: int = 8 * 1024 * 1024,
        grace_seconds: float = 24 * 3600.0,
    ) -> None:
        self._bucket = bucket
        self._prefix = f"{prefix.strip('/')}/objects/" if prefix.strip("/") else "objects/"
        self._endpoint_url = endpoint_url
        self._region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._addressing_style = addressing_style
        self._part_size = part_size
        self._grace = timedelta(seconds=grace_seconds)
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    async def open(self) -> None:
        config = AioConfig(
            s3={"addressing_style": self._addressing_style},
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=64,
        )
        self._client = await self._stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=self._endpoint_url,
                region_name=self._region,
                aws_access_key_id=self._access_key_id,
                aws_secret_access_key=self._secret_access_key,
                config=config,
            )
        )

    async def close(self) -> None:
        await self._stack.aclose()

    def object_key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def local_file(self, key: str) -> None:
        return None

    async def create(self, key: str, digest: Digest) -> S3Pending:
        return S3Pending(self._client, self._bucket, self.object_key(key), self._part_size, digest)

    async def read(self, key: str, start: int, stop: int) -> AsyncIterator[bytes]:
        if stop <= start:
            return
        try:
            answer = await self._client.get_object(
                Bucket=self._bucket, Key=self.object_key(key), Range=f"bytes={start}-{stop - 1}"
            )
            async with answer["Body"] as body:
                async for chunk in body.iter_chunks(READ_CHUNK):
                    yield chunk
        except _FAILURES as exc:
            raise _failed("read", exc) from exc

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete_object(Bucket=self._bucket, Key=self.object_key(key))
        except _FAILURES as exc:
            raise _failed("delete", exc) from exc

    async def sweep(self, known: KnownKeys) -> SweepReport:
        before = datetime.now(UTC) - self._grace
        try:
            pending_removed = await self._abort_stale_uploads(before)
            seen, removed = await self._remove_orphans(before, known)
        except _FAILURES as exc:
            raise _failed("sweep", exc) from exc
        return SweepReport(
            pending_removed=pending_removed, orphans_removed=removed, objects_seen=seen
        )

    async def _abort_stale_uploads(self, before: datetime) -> int:
        aborted = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] <= before:
                    await self._client.abort_multipart_upload(
                        Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted

    async def _remove_orphans(self, before: datetime, known: KnownKeys) -> tuple[int, int]:
        seen = removed = 0
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix):
            listed = {
                item["Key"].removeprefix(self._prefix): item["LastModified"]
                for item in page.get("Contents", [])
            }
            seen += len(listed)
            old = [key for key, modified in listed.items() if modified <= before]
            with_rows = await known(old) if old else set()
            for key in old:
                if key not in with_rows:
                    await self._client.delete_object(Bucket=self._bucket, Key=self.object_key(key))
                    removed += 1
        return seen, removed
