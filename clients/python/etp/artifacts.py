"""Artifact uploads and downloads, streamed both ways and checked by SHA-256 (docs/artifacts.md).

An upload streams the file from disk (never whole in memory) with its `Content-Length`, hashing
it as it goes, under one `Idempotency-Key`: a retry re-reads the file from its start, and the
service answers a retry of a stored upload with the stored artifact. The artifact's `sha256` and
`size` must then be the file's. A download goes to a temporary file beside the destination,
resumes after a lost connection with `Range` and `If-Range` (the artifact's `ETag`), and is renamed
into place only when its size and SHA-256 are the artifact's.
"""

import hashlib
import json
import mimetypes
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from etp.client import Client
from etp.errors import ApiError, ChecksumMismatch, UsageError

CHUNK = 1024 * 1024
Progress = Callable[[int], None]  # bytes done so far (starts again at 0 on a retry)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def upload_artifact(
    client: Client,
    run_id: str,
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    type: str = "file",
    metadata: dict[str, Any] | None = None,
    content_type: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Uploads the file at `path` into the run; the stored artifact (its sha256 checked)."""
    source = Path(path)
    if not source.is_file():
        raise UsageError(f"{source} is not a file")
    size = source.stat().st_size
    media = content_type or mimetypes.guess_type(source.name)[0] or "application/octet-stream"
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        nonlocal digest
        digest = hashlib.sha256()
        done = 0
        if progress:
            progress(0)
        with source.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done)
                yield chunk

    params: dict[str, str] = {"name": name or source.name, "type": type}
    if metadata:
        params["metadata"] = json.dumps(metadata, separators=(",", ":"))
    artifact: dict[str, Any] = client.request(
        "POST",
        f"/api/v1/runs/{run_id}/artifacts",
        params=params,
        content=body,
        headers={"Content-Type": media, "Content-Length": str(size)},
        idempotency_key=uuid.uuid4().hex,
    )
    sent = digest.hexdigest()
    if artifact.get("sha256") != sent or artifact.get("size") != size:
        raise ChecksumMismatch(
            f"the stored artifact {artifact.get('id')} has sha256 {artifact.get('sha256')} and "
            f"{artifact.get('size')} bytes; the file has {sent} and {size}"
        )
    return artifact


def _destination(dest: str | os.PathLike[str] | None, artifact: dict[str, Any]) -> Path:
    # The name is a label that may look like a path: only its last segment names a file here.
    base = Path(str(artifact["name"]).replace("\\", "/").rsplit("/", 1)[-1])
    if base.name in ("", ".", ".."):
        base = Path(str(artifact["id"]))
    if dest is None:
        return Path.cwd() / base.name
    target = Path(dest)
    return target / base.name if target.is_dir() else target


def download_artifact(
    client: Client,
    artifact_id: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    progress: Progress | None = None,
    attempts: int = 5,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any], Path]:
    """Downloads the artifact to `dest` (a file, a folder, or None: the current folder, under the
    last segment of its name); the artifact and where it went, its size and sha256 checked."""
    artifact: dict[str, Any] = client.get(f"/api/v1/artifacts/{artifact_id}")
    if on_start:
        on_start(artifact)
    target = _destination(dest, artifact)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    etag = f'"{artifact["sha256"]}"'
    digest = hashlib.sha256()
    done = 0
    try:
        with partial.open("wb") as out:
            for attempt in range(attempts):
                headers = {"Range": f"bytes={done}-", "If-Range": etag} if done else {}
                try:
                    with client.stream(
                        "GET", f"/api/v1/artifacts/{artifact_id}/content", headers=headers
                    ) as response:
                        if done and response.status_code != 206:  # answered whole: start again
                            out.seek(0)
                            out.truncate()
                            digest, done = hashlib.sha256(), 0
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                            digest.update(chunk)
                            done += len(chunk)
                            if progress:
                                progress(done)
                    break
                except (httpx.TransportError, ApiError) as exc:
                    if isinstance(exc, ApiError) and exc.status is not None:
                        raise
                    if attempt + 1 == attempts:
                        raise ApiError(
                            None, "unreachable", f"the download broke off: {exc}"
                        ) from exc
                    sleep(0.5 * 2**attempt)
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if done != artifact["size"] or got != artifact["sha256"]:
            raise ChecksumMismatch(
                f"downloaded {done} bytes with sha256 {got}; the artifact has "
                f"{artifact['size']} bytes with sha256 {artifact['sha256']}"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return artifact, target
