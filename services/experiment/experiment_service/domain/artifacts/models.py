"""Artifacts as the rules see them, and the commands that make them."""

import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel


class Artifact(BaseModel):
    id: uuid.UUID
    run_id: uuid.UUID
    project_id: uuid.UUID
    name: str
    type: str
    size: int
    sha256: str
    content_type: str
    metadata: dict[str, Any]
    created_by: uuid.UUID
    created_at: datetime
    approved_by: uuid.UUID | None
    approved_at: datetime | None


@dataclass(frozen=True)
class NewArtifact:
    """What the client says of an upload; `declared_size` is its Content-Length, if any."""

    name: str
    type: str
    content_type: str
    metadata: dict[str, Any]
    declared_size: int | None = None


@dataclass(frozen=True)
class Answer:
    """A rendered answer to a keyed upload, to be stored under its Idempotency-Key."""

    status: int
    body: bytes
    content_type: str
    location: str | None


@dataclass(frozen=True)
class UploadKey:
    """An upload's Idempotency-Key. `request` names the request apart from its body (method,
    path and query); `render` is the answer the upload gets, to store with the key."""

    key: str
    request: bytes
    render: Callable[[Artifact], Answer]


@dataclass(frozen=True)
class Replay:
    """The stored answer of an earlier upload with the same key and content."""

    answer: Answer


@dataclass(frozen=True)
class Download:
    """An artifact and a way to read its bytes `start` to `stop` (exclusive); `file` is where
    they lie when the store keeps them on this machine's disk."""

    artifact: Artifact
    chunks: Callable[[int, int], AsyncGenerator[bytes, None]]
    file: Path | None = None
