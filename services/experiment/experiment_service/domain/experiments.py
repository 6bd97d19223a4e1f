"""Experiments: who may do what, and the status machine."""

import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager

from backend_common.db import Database
from backend_common.export_budget import ExportLimits, ExportRows, ExportSlots
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller, Role
from experiment_service.domain import changes
from experiment_service.domain.access import experiment_role
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
    def __init__(self, db: Database, exports: ExportSlots | None = None) -> None:
        self._db = db
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
        role = await self._role(caller, experiment_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            experiments = ExperimentRepository(conn)
            current = await self._locked(experiments, experiment_id)
            status = patch.status
            if status is not None:
                if status not in EXPERIMENT_TRANSITIONS[current.status]:
                    raise InvalidTransition(
                        f"An experiment cannot go from {current.status} to {status}."
                    )
                if status in EXPERIMENT_NEEDS_IDLE_RUNS and await experiments.has_running_runs(
                    experiment_id
                ):
                    raise ExperimentHasRunningRuns()
            elif current.status == ExperimentStatus.ARCHIVED:
                raise ExperimentArchived()
            updated = await experiments.update(experiment_id, patch)
            archived = current.status != updated.status == ExperimentStatus.ARCHIVED
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="experiment.status_changed" if status is not None else "experiment.updated",
                entity_type=ENTITY,
                entry=changes.changed(current, updated),
                project_id=updated.project_id,
                events=[Event("experiment.archived", updated)] if archived else [],
            )
        return updated

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
