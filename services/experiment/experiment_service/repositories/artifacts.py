import uuid
from collections.abc import Sequence

import asyncpg

from backend_common.pagination import CursorKey, Page, PageRequest
from experiment_service.domain.artifacts.models import Artifact, NewArtifact
from experiment_service.repositories.cursor_keys import Instant

COLUMNS = (
    "id, run_id, project_id, name, type, size, sha256, content_type, metadata, created_by,"
    " created_at, approved_by, approved_at"
)


class ArtifactKey(CursorKey):
    """Cursor of a run's artifacts, oldest first."""

    created_at: Instant
    id: uuid.UUID


_INSERT = f"""
    INSERT INTO artifacts (id, run_id, project_id, name, type, size, sha256, content_type,
                           metadata, created_by)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    RETURNING {COLUMNS}
"""
_GET = f"SELECT {COLUMNS} FROM artifacts WHERE id = $1"
# The newest of a run's artifacts of that name (a name may be uploaded again).
_NEWEST_NAMED = f"""
    SELECT {COLUMNS} FROM artifacts WHERE run_id = $1 AND name = $2
    ORDER BY created_at DESC, id DESC LIMIT 1
"""
_GET_FOR_UPDATE = f"SELECT {COLUMNS} FROM artifacts WHERE id = $1 FOR UPDATE"
_LIST = f"""
    SELECT {COLUMNS} FROM artifacts
    WHERE run_id = $1 AND ($2::text IS NULL OR type = $2)
      AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
    ORDER BY created_at, id LIMIT $5
"""
_APPROVE = f"""
    UPDATE artifacts SET approved_by = $2, approved_at = now() WHERE id = $1
    RETURNING {COLUMNS}
"""
_DELETE = f"DELETE FROM artifacts WHERE id = $1 RETURNING {COLUMNS}"
_EXISTING = "SELECT id FROM artifacts WHERE id = ANY($1::uuid[])"
_USED = "SELECT bytes FROM artifact_usage WHERE project_id = $1"
# Adds an upload's bytes unless the project would pass its quota (then no row comes back); the
# row lock serialises the project's uploads from here to their commit.
_ADD_USAGE = """
    INSERT INTO artifact_usage AS usage (project_id, bytes, artifacts) VALUES ($1, $2, 1)
    ON CONFLICT (project_id) DO UPDATE
        SET bytes = usage.bytes + EXCLUDED.bytes, artifacts = usage.artifacts + 1
        WHERE usage.bytes + EXCLUDED.bytes <= $3
    RETURNING bytes
"""
_CLAIM_TRASH = """
    SELECT artifact_id FROM artifact_trash ORDER BY deleted_at
    LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_FORGET_TRASH = "DELETE FROM artifact_trash WHERE artifact_id = ANY($1::uuid[])"


def _artifact(row: asyncpg.Record) -> Artifact:
    return Artifact.model_validate(dict(row))


class ArtifactRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(
        self,
        *,
        artifact_id: uuid.UUID,
        run_id: uuid.UUID,
        project_id: uuid.UUID,
        new: NewArtifact,
        size: int,
        sha256: str,
        created_by: uuid.UUID,
    ) -> Artifact:
        row = await self._conn.fetchrow(
            _INSERT,
            artifact_id,
            run_id,
            project_id,
            new.name,
            new.type,
            size,
            sha256,
            new.content_type,
            new.metadata,
            created_by,
        )
        return _artifact(row)

    async def get(self, artifact_id: uuid.UUID, *, for_update: bool = False) -> Artifact | None:
        row = await self._conn.fetchrow(_GET_FOR_UPDATE if for_update else _GET, artifact_id)
        return None if row is None else _artifact(row)

    async def newest_named(self, run_id: uuid.UUID, name: str) -> Artifact | None:
        row = await self._conn.fetchrow(_NEWEST_NAMED, run_id, name)
        return None if row is None else _artifact(row)

    async def find(
        self, run_id: uuid.UUID, page: PageRequest, *, type_: str | None = None
    ) -> Page[Artifact]:
        after = page.after(ArtifactKey)
        rows = await self._conn.fetch(
            _LIST,
            run_id,
            type_,
            None if after is None else after.created_at,
            None if after is None else after.id,
            page.fetch,
        )
        return page.page(
            [_artifact(row) for row in rows],
            key=lambda artifact: ArtifactKey(created_at=artifact.created_at, id=artifact.id),
        )

    async def approve(self, artifact_id: uuid.UUID, approved_by: uuid.UUID) -> Artifact:
        return _artifact(await self._conn.fetchrow(_APPROVE, artifact_id, approved_by))

    async def delete(self, artifact_id: uuid.UUID) -> Artifact | None:
        """Deletes the row; the trigger takes its bytes off the project's usage and queues its
        object for removal."""
        row = await self._conn.fetchrow(_DELETE, artifact_id)
        return None if row is None else _artifact(row)

    async def existing(self, artifact_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        rows = await self._conn.fetch(_EXISTING, list(artifact_ids))
        return {row["id"] for row in rows}

    async def used_bytes(self, project_id: uuid.UUID) -> int:
        used: int | None = await self._conn.fetchval(_USED, project_id)
        return used or 0

    async def add_usage(self, project_id: uuid.UUID, size: int, *, quota: int) -> bool:
        """Counts `size` more bytes for the project; False (nothing counted) past `quota`."""
        if size > quota:
            return False
        added = await self._conn.fetchval(_ADD_USAGE, project_id, size, quota)
        return added is not None

    async def claim_trash(self, limit: int) -> list[uuid.UUID]:
        rows = await self._conn.fetch(_CLAIM_TRASH, limit)
        return [row["artifact_id"] for row in rows]

    async def forget_trash(self, artifact_ids: Sequence[uuid.UUID]) -> None:
        await self._conn.execute(_FORGET_TRASH, list(artifact_ids))
