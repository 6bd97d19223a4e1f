"""Deleting a project's data after the auth service deleted the project (docs/operations.md,
"Deleting a project").

The auth service announces the deletion until it is acknowledged; `record` acknowledges it
once it is durable, in one transaction that also:
- gives each of the project's sensors that is shared into another project a new home (the
  project that shared it first): the sensor stays, with its token, profiles and readings;
- revokes the tokens of the project's other sensors (telemetry ingest refuses them within its
  token cache's time, at once where the NOTIFY reaches it);
- makes the job `projects.delete_data` due.
A redelivered announcement finds the record and changes nothing.

The job then deletes the project's rows in chunks of `chunk`, a transaction each, so a crash
loses at most a chunk's work and the next run of the job goes on from what is left:
webhook deliveries, subscriptions and events; artifacts (their objects go through the
artifact trash); metric points and tiles; runs (with their capture sessions, gaps, bindings,
metric batches and summaries); experiments; the project's sensors (with profiles and tokens;
each is noted in `deleted_sensors`, from which telemetry deletes its readings and rollup);
the links of other projects' sensors shared into it; its settings. Audit rows stay for their
retention (docs/jobs.md): they record who did what, the deletion included.
"""

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from backend_common.clock import Clock
from backend_common.db import Database
from backend_common.repositories.jobs import JobRepository
from experiment_service.domain import changes
from experiment_service.repositories.project_deletions import (
    MovedSensor,
    ProjectDeletion,
    ProjectDeletionRepository,
)

JOB = "projects.delete_data"
# Before the runs: what refers to them; after the runs: experiments, and the sensor links
# that bindings (run_sensors) refer to.
BEFORE_SENSORS = (
    "webhook_deliveries",
    "webhook_subscriptions",
    "webhook_events",
    "artifacts",
    "metric_points",
    "metric_tiles",
    "runs",
    "experiments",
)
AFTER_SENSORS = ("sensor_links",)


@dataclass(frozen=True)
class DeletionNotice:
    """The auth service's announcement."""

    event_id: uuid.UUID
    project_id: uuid.UUID
    deleted_at: datetime


class ProjectDeletions:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        chunk: int = 1000,
        pause: float = 0.0,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._chunk = chunk
        self._pause = pause
        self._wake = wake

    async def record(self, notice: DeletionNotice) -> ProjectDeletion:
        now = self._clock()
        async with self._db.transaction() as conn:
            deletions = ProjectDeletionRepository(conn)
            recorded = await deletions.record(
                notice.project_id, event_id=notice.event_id, deleted_at=notice.deleted_at, now=now
            )
            if recorded is None:
                known = await deletions.get(notice.project_id)
                assert known is not None
                return known
            await changes.record(
                conn,
                caller=None,
                role=None,
                action="project.deleted",
                entity_type="project",
                entry=changes.Entry(
                    notice.project_id,
                    after={
                        "event_id": str(notice.event_id),
                        "deleted_at": notice.deleted_at.isoformat(),
                    },
                ),
                project_id=notice.project_id,
                request_id=f"project_deletion:{notice.project_id}",
            )
            moved = await deletions.move_shared_sensors(notice.project_id)
            await self._audit_moves(conn, notice.project_id, moved)
            await deletions.revoke_sensor_tokens(notice.project_id)
            await JobRepository(conn).due_now(JOB, now=now)
        self._wake()
        return recorded

    async def delete_pending(self, now: datetime) -> Mapping[str, int]:
        """Deletes the rows of every project whose deletion is recorded and not finished (and of
        those recorded meanwhile); what went, in all."""
        totals: dict[str, int] = {"projects": 0}
        while True:
            async with self._db.connection() as conn:
                pending = await ProjectDeletionRepository(conn).pending()
            if not pending:
                return totals
            for project_id in pending:
                for what, count in (await self._delete_project(project_id, now)).items():
                    totals[what] = totals.get(what, 0) + count
                totals["projects"] += 1

    async def _delete_project(self, project_id: uuid.UUID, now: datetime) -> dict[str, int]:
        counts: dict[str, int] = {}
        for what in BEFORE_SENSORS:
            counts[what] = await self._in_chunks(project_id, what, now)
        # Again: a sensor shared into another project since the deletion was recorded.
        async with self._db.transaction() as conn:
            moved = await ProjectDeletionRepository(conn).move_shared_sensors(project_id)
            await self._audit_moves(conn, project_id, moved)
        counts["sensors"] = await self._in_chunks(project_id, "sensors", now)
        for what in AFTER_SENSORS:
            counts[what] = await self._in_chunks(project_id, what, now)
        async with self._db.transaction() as conn:
            deletions = ProjectDeletionRepository(conn)
            await deletions.delete_settings(project_id)
            await deletions.finish(project_id, now=now)
        return counts

    async def _in_chunks(self, project_id: uuid.UUID, what: str, now: datetime) -> int:
        deleted = 0
        while True:
            async with self._db.transaction() as conn:
                deletions = ProjectDeletionRepository(conn)
                if what == "sensors":
                    count = await deletions.delete_sensors(project_id, limit=self._chunk, now=now)
                else:
                    count = await deletions.delete_chunk(what, project_id, limit=self._chunk)
                if count:
                    await deletions.add_count(project_id, what, count)
            deleted += count
            if count < self._chunk:
                return deleted
            if self._pause:
                await asyncio.sleep(self._pause)

    @staticmethod
    async def _audit_moves(
        conn: asyncpg.Connection,
        project_id: uuid.UUID,
        moved: list[MovedSensor],
    ) -> None:
        """Each sensor given a new home: an audit row in that project (no actor)."""
        for sensor in moved:
            await changes.record(
                conn,
                caller=None,
                role=None,
                action="sensor.home_changed",
                entity_type="sensor",
                entry=changes.Entry(
                    sensor.sensor_id,
                    before={"project_id": str(project_id)},
                    after={"project_id": str(sensor.home_project_id)},
                ),
                project_id=sensor.home_project_id,
                request_id=f"project_deletion:{project_id}",
            )
