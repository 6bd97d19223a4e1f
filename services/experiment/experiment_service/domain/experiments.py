"""Experiments: who may do what, and the status machine."""

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass

import asyncpg

from backend_common.db import Database
from backend_common.errors import DomainError
from backend_common.export_budget import ExportLimits, ExportRows, ExportSlots
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller, Role
from experiment_service.domain import changes
from experiment_service.domain.access import experiment_role
from experiment_service.domain.batches import change_all, merged_tags
from experiment_service.domain.errors import (
    ExperimentArchived,
    ExperimentHasRunningRuns,
    ExperimentNotFound,
    InvalidTransition,
)
from experiment_service.domain.listing import ListFilter, SortOrder
from experiment_service.domain.models import Experiment, ExperimentStatus
from experiment_service.domain.transitions import (
    EXPERIMENT_NEEDS_IDLE_RUNS,
    EXPERIMENT_TRANSITIONS,
)
from experiment_service.domain.webhooks.outbox import Event
from experiment_service.models import ExperimentCreate, ExperimentUpdate
from experiment_service.repositories.experiments import ExperimentRepository

ENTITY = "experiment"


class Experiments:
    def __init__(
        self, db: Database, exports: ExportSlots | None = None, *, max_fan_out: int = 5000
    ) -> None:
        self._db = db
        self._max_fan_out = max_fan_out  # webhook deliveries one batch change may queue
        self._exports = exports or ExportSlots(ExportLimits())

    async def create(self, caller: Caller, data: ExperimentCreate) -> Experiment:
        role = await caller.require(data.project_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            experiment = await ExperimentRepository(conn).insert(
                project_id=data.project_id, owner_id=caller.user_id, data=data
            )
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="experiment.created",
                entity_type=ENTITY,
                entry=changes.created(experiment),
                project_id=experiment.project_id,
            )
        return experiment

    async def get(self, caller: Caller, experiment_id: uuid.UUID) -> Experiment:
        experiment, _ = await experiment_role(self._db, caller, experiment_id, Role.VIEWER)
        return experiment

    async def _role(self, caller: Caller, experiment_id: uuid.UUID, minimum: Role) -> Role:
        _, role = await experiment_role(self._db, caller, experiment_id, minimum)
        return role

    @staticmethod
    async def _locked(experiments: ExperimentRepository, experiment_id: uuid.UUID) -> Experiment:
        """The experiment, row-locked until the transaction ends; its project never changes."""
        experiment = await experiments.get(experiment_id, lock="update")
        if experiment is None:
            raise ExperimentNotFound()
        return experiment

    async def list_page(
        self, caller: Caller, flt: ListFilter, sort: SortOrder, page: PageRequest
    ) -> Page[Experiment]:
        assert flt.project_id is not None
        await caller.require(flt.project_id, Role.VIEWER)
        async with self._db.connection() as conn:
            return await ExperimentRepository(conn).find(flt, sort, page)

    @asynccontextmanager
    async def export(
        self, caller: Caller, flt: ListFilter, sort: SortOrder
    ) -> AsyncIterator[ExportRows[Experiment]]:
        """The matching experiments in `sort` order, up to the row cap, from one consistent
        snapshot; an export slot and a connection are held until the block ends. Raises the
        role errors, TooManyExports or ExportsBusy."""
        assert flt.project_id is not None
        await caller.require(flt.project_id, Role.VIEWER)  # before a slot is held
        limit = self._exports.limits.max_rows
        with self._exports.slot(caller.user_id):
            async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
                experiments = ExperimentRepository(conn)
                truncated = await experiments.more_than(flt, limit)
                # Closed before the transaction ends, however the reading of it ended.
                async with aclosing(experiments.stream(flt, sort, limit=limit)) as rows:
                    yield ExportRows(rows, truncated=truncated, max_rows=limit)

    async def update(
        self, caller: Caller, experiment_id: uuid.UUID, patch: ExperimentUpdate
    ) -> Experiment:
        return await self.revise(caller, experiment_id, lambda _: patch)

    async def revise(
        self,
        caller: Caller,
        experiment_id: uuid.UUID,
        revision: Callable[[Experiment], ExperimentUpdate | None],
    ) -> Experiment:
        """Like `update`, with the patch that `revision` makes of the experiment as it is once
        locked (None: nothing to change), so that changes made of its fields are not lost."""
        role = await self._role(caller, experiment_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            experiments = ExperimentRepository(conn)
            current = await self._locked(experiments, experiment_id)
            patch = revision(current)
            if patch is None:
                return current
            await _check(experiments, current, patch)
            return await _write(conn, caller, role, current, patch)

    async def batch_status(
        self, caller: Caller, experiment_ids: list[uuid.UUID], status: ExperimentStatus
    ) -> list[Experiment]:
        """All experiments take `status`, or none does; the failures name each one and rule."""
        patch = ExperimentUpdate(status=status)
        return await self._batch(caller, experiment_ids, lambda _: patch)

    async def bulk_tags(
        self,
        caller: Caller,
        experiment_ids: list[uuid.UUID],
        *,
        add: list[str],
        remove: list[str],
        set_: list[str] | None,
    ) -> list[Experiment]:
        def retag(experiment: Experiment) -> ExperimentUpdate:
            tags = merged_tags(experiment.tags, add=add, remove=remove, set_=set_)
            return ExperimentUpdate(tags=tags)

        return await self._batch(caller, experiment_ids, retag)

    async def _batch(
        self,
        caller: Caller,
        experiment_ids: list[uuid.UUID],
        patch: Callable[[Experiment], ExperimentUpdate],
    ) -> list[Experiment]:
        return await change_all(
            self._db,
            caller,
            experiment_ids,
            _ExperimentBatch(patch),
            max_fan_out=self._max_fan_out,
        )

    async def delete(self, caller: Caller, experiment_id: uuid.UUID) -> None:
        role = await self._role(caller, experiment_id, Role.OWNER)
        async with self._db.transaction() as conn:
            experiments = ExperimentRepository(conn)
            current = await self._locked(experiments, experiment_id)
            if await experiments.has_running_runs(experiment_id):
                raise ExperimentHasRunningRuns()
            deleted_runs = await experiments.delete(experiment_id)
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="experiment.deleted",
                entity_type=ENTITY,
                entry=changes.deleted(current, {"deleted_runs": deleted_runs}),
                project_id=current.project_id,
            )


async def _check(
    experiments: ExperimentRepository, current: Experiment, patch: ExperimentUpdate
) -> None:
    """Raises the rule the patch would break: the status machine, idle runs, archived."""
    status = patch.status
    if status is not None:
        if status not in EXPERIMENT_TRANSITIONS[current.status]:
            raise InvalidTransition(f"An experiment cannot go from {current.status} to {status}.")
        if status in EXPERIMENT_NEEDS_IDLE_RUNS and await experiments.has_running_runs(current.id):
            raise ExperimentHasRunningRuns()
    elif current.status == ExperimentStatus.ARCHIVED:
        raise ExperimentArchived()


def _events(current: Experiment, status: ExperimentStatus | None) -> list[str]:
    archived = status == ExperimentStatus.ARCHIVED != current.status
    return ["experiment.archived"] if archived else []


async def _write(
    conn: asyncpg.Connection,
    caller: Caller,
    role: Role,
    current: Experiment,
    patch: ExperimentUpdate,
) -> Experiment:
    """Writes a checked patch with its audit row and webhook events."""
    updated = await ExperimentRepository(conn).update(current.id, patch)
    await changes.record(
        conn,
        caller=caller,
        role=role,
        action="experiment.status_changed" if patch.status is not None else "experiment.updated",
        entity_type=ENTITY,
        entry=changes.changed(current, updated),
        project_id=updated.project_id,
        events=[Event(kind, updated) for kind in _events(current, patch.status)],
    )
    return updated


@dataclass(frozen=True)
class _ExperimentBatch:
    """Experiments as the items of a batch change (domain.batches)."""

    patch: Callable[[Experiment], ExperimentUpdate]
    item: str = "experiment"

    async def read(
        self, conn: asyncpg.Connection, ids: list[uuid.UUID], *, for_update: bool
    ) -> dict[uuid.UUID, Experiment]:
        return await ExperimentRepository(conn).get_many(ids, for_update=for_update)

    async def role(self, caller: Caller, found: Experiment | None) -> Role:
        if found is None:
            raise ExperimentNotFound()
        return await caller.require(found.project_id, Role.EDITOR, not_found=ExperimentNotFound)

    def not_found(self) -> DomainError:
        return ExperimentNotFound()

    async def plan(self, conn: asyncpg.Connection, found: Experiment) -> ExperimentUpdate:
        patch = self.patch(found)
        await _check(ExperimentRepository(conn), found, patch)
        return patch

    def fan_out(self, found: Experiment, plan: ExperimentUpdate) -> list[tuple[uuid.UUID, str]]:
        return [(found.project_id, kind) for kind in _events(found, plan.status)]

    async def write(
        self,
        conn: asyncpg.Connection,
        caller: Caller,
        role: Role,
        found: Experiment,
        plan: ExperimentUpdate,
    ) -> Experiment:
        return await _write(conn, caller, role, found, plan)
