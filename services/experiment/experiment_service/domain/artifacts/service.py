"""Artifacts: uploads into a run, reading them back, approval, deletion, and the upkeep that
removes bytes nobody references (the start-up sweep, the trash of deleted artifacts).

An upload goes: role and run checks (no connection held), bytes streamed into a pending object,
the object published, then one transaction that re-reads the run under a share lock, counts the
bytes against the project's quota, inserts the row, writes audit and webhook event (and the
Idempotency-Key answer). Anything failing on the way discards the object; a crash leaves a pending
or published object without a row, which the sweep removes.
"""

import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from datetime import timedelta

import structlog

from backend_common.db import Database
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller, Role
from backend_common.repositories.idempotency import IdempotencyRepository, StoredAnswer
from backend_common.statuses import RunStatus
from experiment_service.domain import changes
from experiment_service.domain.access import locked_run, run_access, run_role
from experiment_service.domain.artifacts.models import (
    Answer,
    Artifact,
    Download,
    NewArtifact,
    Replay,
    UploadKey,
)
from experiment_service.domain.artifacts.receiving import (
    fingerprint,
    new_digest,
    receive,
    storage_failure,
)
from experiment_service.domain.errors import (
    ArtifactNotFound,
    ArtifactQuotaExceeded,
    ArtifactTooLarge,
    RunArchived,
    RunNotFound,
    UploadKeyReused,
)
from experiment_service.domain.webhooks.outbox import Event
from experiment_service.repositories.artifacts import ArtifactRepository
from experiment_service.storage.base import ObjectStore, StorageError, SweepReport

_log = structlog.get_logger(__name__)

ENTITY = "artifact"
IDEMPOTENCY_TTL = timedelta(hours=24)


class _KeyTaken(Exception):
    """Rolls the upload's transaction back: its Idempotency-Key holds an answer already."""


class Artifacts:
    def __init__(
        self, db: Database, store: ObjectStore, *, max_bytes: int, project_quota: int
    ) -> None:
        self._db = db
        self._store = store
        self._max_bytes = max_bytes
        self._quota = project_quota

    async def upload(
        self,
        caller: Caller,
        run_id: uuid.UUID,
        new: NewArtifact,
        body: AsyncIterable[Sequence[bytes]],
        *,
        key: UploadKey | None = None,
    ) -> Artifact | Replay:
        """Stores `body` (batches of pieces as they arrived) as a new artifact of the run, or
        replays the answer an earlier upload with the same Idempotency-Key (and the same
        content) got."""
        run, _ = await run_role(self._db, caller, run_id, Role.EDITOR)
        if run.status == RunStatus.ARCHIVED:
            raise RunArchived("The run is archived: it takes no more artifacts.")
        async with self._db.connection() as conn:
            used = await ArtifactRepository(conn).used_bytes(run.project_id)
        room = self._quota - used

        def limit(size: int) -> None:
            if size > self._max_bytes:
                raise ArtifactTooLarge(self._max_bytes)
            if size > room:
                raise ArtifactQuotaExceeded(self._quota, used)

        if new.declared_size is not None:
            limit(new.declared_size)
        if key is not None:
            stored = await IdempotencyRepository(self._db.pool).get(
                user_id=caller.user_id, key=key.key
            )
            if stored is not None:
                sha256, _ = await receive(body, None, new_digest(), limit=limit)
                return _replay(stored, fingerprint(key, new, sha256))

        artifact_id = uuid.uuid4()
        digest = new_digest()
        try:
            pending = await self._store.create(artifact_id.hex, digest)
        except StorageError as exc:
            raise storage_failure(exc) from exc
        try:
            sha256, size = await receive(body, pending, digest, limit=limit)
            try:
                await pending.publish()
            except StorageError as exc:
                raise storage_failure(exc) from exc
            # The upload may have taken long: the caller may have lost the role meanwhile.
            role = await caller.require(run.project_id, Role.EDITOR, not_found=RunNotFound)
            return await self._commit(
                caller, role, run_id, artifact_id, new, sha256=sha256, size=size, key=key
            )
        except _Replayed as replayed:
            await pending.discard()
            return replayed.replay
        except BaseException:
            await pending.discard()
            raise
        finally:
            await pending.close()

    async def _commit(
        self,
        caller: Caller,
        role: Role,
        run_id: uuid.UUID,
        artifact_id: uuid.UUID,
        new: NewArtifact,
        *,
        sha256: str,
        size: int,
        key: UploadKey | None,
    ) -> Artifact:
        try:
            async with self._db.transaction() as conn:
                # Shared: an archiving of the run waits for the upload, or the upload sees it.
                run = await locked_run(conn, run_id, "share")
                if run.status == RunStatus.ARCHIVED:
                    raise RunArchived("The run is archived: it takes no more artifacts.")
                artifacts = ArtifactRepository(conn)
                if not await artifacts.add_usage(run.project_id, size, quota=self._quota):
                    raise ArtifactQuotaExceeded(
                        self._quota, await artifacts.used_bytes(run.project_id)
                    )
                artifact = await artifacts.insert(
                    artifact_id=artifact_id,
                    run_id=run_id,
                    project_id=run.project_id,
                    new=new,
                    size=size,
                    sha256=sha256,
                    created_by=caller.user_id,
                )
                await changes.record(
                    conn,
                    caller=caller,
                    role=role,
                    action="artifact.created",
                    entity_type=ENTITY,
                    entry=changes.created(artifact),
                    project_id=artifact.project_id,
                    parent_id=run_id,
                    events=[Event("artifact.created", artifact)],
                )
                if key is not None:
                    answer = key.render(artifact)
                    stored = await IdempotencyRepository(conn).store(
                        user_id=caller.user_id,
                        key=key.key,
                        ttl=IDEMPOTENCY_TTL,
                        answer=StoredAnswer(
                            fingerprint=fingerprint(key, new, sha256),
                            status=answer.status,
                            body=answer.body,
                            content_type=answer.content_type,
                            location=answer.location,
                        ),
                    )
                    if not stored:
                        raise _KeyTaken()
            return artifact
        except _KeyTaken:
            # A concurrent upload with the key committed first: this one's object goes.
            assert key is not None
            earlier = await IdempotencyRepository(self._db.pool).get(
                user_id=caller.user_id, key=key.key
            )
            assert earlier is not None
            replay = _replay(earlier, fingerprint(key, new, sha256))
            raise _Replayed(replay) from None

    async def get(self, caller: Caller, artifact_id: uuid.UUID) -> Artifact:
        artifact, _ = await self._visible(caller, artifact_id, Role.VIEWER)
        return artifact

    async def list_page(
        self, caller: Caller, run_id: uuid.UUID, page: PageRequest, *, type_: str | None = None
    ) -> Page[Artifact]:
        async with self._db.connection() as conn:
            await run_access(conn, caller, run_id, Role.VIEWER)
            return await ArtifactRepository(conn).find(run_id, page, type_=type_)

    async def download(self, caller: Caller, artifact_id: uuid.UUID) -> Download:
        artifact, _ = await self._visible(caller, artifact_id, Role.VIEWER)
        return self._download(artifact)

    async def download_named(self, caller: Caller, run_id: uuid.UUID, name: str) -> Download:
        """The newest of the run's artifacts named `name` (a path, for the MLflow door)."""
        async with self._db.connection() as conn:
            await run_access(conn, caller, run_id, Role.VIEWER)
            artifact = await ArtifactRepository(conn).newest_named(run_id, name)
        if artifact is None:
            raise ArtifactNotFound()
        return self._download(artifact)

    def _download(self, artifact: Artifact) -> Download:
        return Download(
            artifact,
            lambda start, stop: self._chunks(artifact, start, stop),
            self._store.local_file(artifact.id.hex),
        )

    async def _chunks(
        self, artifact: Artifact, start: int, stop: int
    ) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in self._store.read(artifact.id.hex, start, stop):
                yield chunk
        except StorageError as exc:
            raise storage_failure(exc) from exc

    async def approve(self, caller: Caller, artifact_id: uuid.UUID) -> Artifact:
        """Records the caller as the approver; an approved artifact stays as it is."""
        seen, role = await self._visible(caller, artifact_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            run = await locked_run(conn, seen.run_id, "share")
            if run.status == RunStatus.ARCHIVED:
                raise RunArchived("The run is archived: its artifacts no longer change.")
            artifacts = ArtifactRepository(conn)
            current = await artifacts.get(artifact_id, for_update=True)
            if current is None:
                raise ArtifactNotFound()
            if current.approved_by is not None:
                return current
            approved = await artifacts.approve(artifact_id, caller.user_id)
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="artifact.approved",
                entity_type=ENTITY,
                entry=changes.changed(current, approved),
                project_id=approved.project_id,
                parent_id=approved.run_id,
                events=[Event("artifact.approved", approved)],
            )
        return approved

    async def delete(self, caller: Caller, artifact_id: uuid.UUID) -> None:
        """Deletes the artifact and its bytes (the quota counts them off at once)."""
        _, role = await self._visible(caller, artifact_id, Role.OWNER)
        async with self._db.transaction() as conn:
            deleted = await ArtifactRepository(conn).delete(artifact_id)
            if deleted is None:
                raise ArtifactNotFound()
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="artifact.deleted",
                entity_type=ENTITY,
                entry=changes.deleted(deleted),
                project_id=deleted.project_id,
                parent_id=deleted.run_id,
            )
        await self._remove_objects([artifact_id])

    async def empty_trash(self, *, limit: int = 100) -> int:
        """Removes the objects of deleted artifacts (by a request, or with their run or
        experiment) that are still stored; how many."""
        async with self._db.transaction() as conn:
            artifacts = ArtifactRepository(conn)
            claimed = await artifacts.claim_trash(limit)
            for artifact_id in claimed:
                await self._store.delete(artifact_id.hex)
            await artifacts.forget_trash(claimed)
        return len(claimed)

    async def _remove_objects(self, artifact_ids: Sequence[uuid.UUID]) -> None:
        try:
            for artifact_id in artifact_ids:
                await self._store.delete(artifact_id.hex)
            async with self._db.connection() as conn:
                await ArtifactRepository(conn).forget_trash(artifact_ids)
        except StorageError as exc:
            # Still in the trash: the next pass removes it.
            _log.warning("artifact_object_not_removed", error=str(exc))

    async def sweep(self) -> SweepReport:
        """Removes stored bytes no artifact row references and no live upload owns."""
        return await self._store.sweep(self._known)

    async def _known(self, keys: Sequence[str]) -> set[str]:
        """The keys that have a row, and any that is not an artifact id (left alone)."""
        ids: dict[uuid.UUID, str] = {}
        strange = set()
        for key in keys:
            try:
                ids[uuid.UUID(hex=key)] = key
            except ValueError:
                strange.add(key)
        async with self._db.connection() as conn:
            existing = await ArtifactRepository(conn).existing(list(ids))
        return strange | {ids[artifact_id] for artifact_id in existing}

    async def _visible(
        self, caller: Caller, artifact_id: uuid.UUID, minimum: Role
    ) -> tuple[Artifact, Role]:
        """The artifact and the caller's role in its project, at least `minimum`; outside the
        project the artifact does not exist for the caller."""
        async with self._db.connection() as conn:
            artifact = await ArtifactRepository(conn).get(artifact_id)
        if artifact is None:
            raise ArtifactNotFound()
        role = await caller.require(artifact.project_id, minimum, not_found=ArtifactNotFound)
        return artifact, role


class _Replayed(Exception):
    """Carries a replay out of the failed commit (the pending object is discarded on the way)."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay


def _replay(stored: StoredAnswer, expected: bytes) -> Replay:
    if stored.fingerprint != expected:
        raise UploadKeyReused()
    return Replay(Answer(stored.status, stored.body, stored.content_type, stored.location))
