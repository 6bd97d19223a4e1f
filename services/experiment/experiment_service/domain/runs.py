"""Runs: the status machine, its invariants, batch changes."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from backend_common.db import Database
from backend_common.errors import DomainError
from backend_common.export_budget import ExportLimits, ExportRows, ExportSlots
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller, Role
from backend_common.statuses import RunStatus
from experiment_service.domain import changes
from experiment_service.domain.access import experiment_role, locked_run, run_role
from experiment_service.domain.batches import change_all, merged_tags
from experiment_service.domain.errors import (
    ExperimentArchived,
    ExperimentNotFound,
    InvalidTransition,
    RunArchived,
    RunHasActiveCapture,
    RunLimit,
    RunNotFound,
)
from experiment_service.domain.listing import ListFilter, SortOrder
from experiment_service.domain.models import ExperimentStatus, Run, StatusChange
from experiment_service.domain.run_queries import ValueSort
from experiment_service.domain.transitions import (
    RUN_FINISHED,
    RUN_STATUSES_NEEDING_IDLE_CAPTURE,
    RUN_TRANSITIONS,
)
from experiment_service.domain.webhooks.outbox import Event
from experiment_service.models import JsonObject, RunCreate, RunUpdate
from experiment_service.repositories.capture_sessions import CaptureSessionRepository
from experiment_service.repositories.experiments import ExperimentRepository
from experiment_service.repositories.runs import RunRepository

ENTITY = "run"


@dataclass(frozen=True)
class _Change:
    """What one run takes: the fields of a PATCH, a new status, new tags."""

    patch: RunUpdate | None = None
    status: StatusChange | None = None
    tags: list[str] | None = None

    @property
    def requested(self) -> set[str]:
        """The fields asked for (a change may leave them as they were)."""
        names = set() if self.patch is None else set(self.patch.model_fields_set)
        if self.status is not None:
            names.add("status")
        if self.tags is not None:
            names.add("tags")
        return names


async def _status_change(conn: asyncpg.Connection, run: Run, status: RunStatus) -> StatusChange:
    """The status with the instants it sets, after checking the transition is allowed now."""
    if status not in RUN_TRANSITIONS[run.status]:
        raise InvalidTransition(f"A run cannot go from {run.status} to {status}.")
    if status in RUN_STATUSES_NEEDING_IDLE_CAPTURE and await CaptureSessionRepository(
        conn
    ).has_running(run.id):
        raise RunHasActiveCapture()
    now = datetime.now(UTC)
    if status == RunStatus.RUNNING:
        # The share lock waits for (and holds off) an archiving of the experiment.
        experiment = await ExperimentRepository(conn).get(run.experiment_id, lock="share")
        if experiment is not None and experiment.status == ExperimentStatus.ARCHIVED:
            raise ExperimentArchived("The experiment is archived; its runs cannot start.")
        return StatusChange(status, started_at=now)
    if status in RUN_FINISHED:
        duration = None if run.started_at is None else (now - run.started_at).total_seconds()
        return StatusChange(status, finished_at=now, duration_seconds=duration)
    return StatusChange(status)


async def _editor_role(caller: Caller, run: Run | None) -> Role:
    if run is None:
        raise RunNotFound()
    return await caller.require(run.project_id, Role.EDITOR, not_found=RunNotFound)


class Runs:
    def __init__(
        self,
        db: Database,
        exports: ExportSlots | None = None,
        *,
        max_runs: int = 10_000,
        max_fan_out: int = 5_000,
    ) -> None:
        self._db = db
        self._exports = exports or ExportSlots(ExportLimits())
        self._max_runs = max_runs  # per experiment
        self._max_fan_out = max_fan_out  # webhook deliveries one batch change may queue

    async def create(self, caller: Caller, experiment_id: uuid.UUID, data: RunCreate) -> Run:
        experiment, role = await experiment_role(self._db, caller, experiment_id, Role.EDITOR)
        if experiment.status == ExperimentStatus.ARCHIVED:
            raise ExperimentArchived()
        async with self._db.transaction() as conn:
            runs = RunRepository(conn)
            if await runs.count_in_locked_experiment(experiment_id) >= self._max_runs:
                raise RunLimit(f"An experiment has at most {self._max_runs} runs.")
            run = await runs.insert_into_open_experiment(
                experiment_id=experiment_id, created_by=caller.user_id, data=data
            )
            if run is None:
                # Archived or deleted since it was read.
                if await ExperimentRepository(conn).get(experiment_id) is None:
                    raise ExperimentNotFound()
                raise ExperimentArchived()
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="run.created",
                entity_type=ENTITY,
                entry=changes.created(run),
                project_id=run.project_id,
                parent_id=experiment_id,
                events=[Event("run.created", run)],
            )
        return run

    async def get(self, caller: Caller, run_id: uuid.UUID) -> Run:
        async with self._db.connection() as conn:
            run = await RunRepository(conn).get(run_id)
        if run is None:
            raise RunNotFound()
        await caller.require(run.project_id, Role.VIEWER, not_found=RunNotFound)
        return run

    async def _scope(self, caller: Caller, flt: ListFilter) -> ListFilter:
        """Checks the caller may read the list; an experiment filter fixes the project."""
        if flt.experiment_id is not None:
            async with self._db.connection() as conn:
                experiment = await ExperimentRepository(conn).get(flt.experiment_id)
            if experiment is None or flt.project_id not in (None, experiment.project_id):
                raise ExperimentNotFound()
            await caller.require(experiment.project_id, Role.VIEWER, not_found=ExperimentNotFound)
            return flt
        assert flt.project_id is not None
        await caller.require(flt.project_id, Role.VIEWER)
        return flt

    async def list_page(
        self, caller: Caller, flt: ListFilter, sort: SortOrder | ValueSort, page: PageRequest
    ) -> Page[Run]:
        flt = await self._scope(caller, flt)
        async with self._db.connection() as conn:
            return await RunRepository(conn).find(flt, sort, page)

    @asynccontextmanager
    async def export(
        self, caller: Caller, flt: ListFilter, sort: SortOrder | ValueSort
    ) -> AsyncIterator[ExportRows[Run]]:
        """The matching runs in `sort` order, up to the row cap, from one consistent
        snapshot; an export slot and a connection are held until the block ends. Raises the
        role errors, TooManyExports or ExportsBusy."""
        flt = await self._scope(caller, flt)  # roles asked before a slot is held
        limit = self._exports.limits.max_rows
        with self._exports.slot(caller.user_id):
            async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
                runs = RunRepository(conn)
                truncated = await runs.more_than(flt, limit)
                # Closed before the transaction ends, however the reading of it ended.
                async with aclosing(runs.stream(flt, sort, limit=limit)) as rows:
                    yield ExportRows(rows, truncated=truncated, max_rows=limit)

    async def update(self, caller: Caller, run_id: uuid.UUID, patch: RunUpdate) -> Run:
        return await self.revise(caller, run_id, lambda _: patch)

    async def merge_params(self, caller: Caller, run_id: uuid.UUID, params: JsonObject) -> Run:
        """The params merged into the run's as they are once it is locked, so that writers
        logging at once never lose each other's keys."""
        return await self.revise(
            caller, run_id, lambda run: RunUpdate(params={**run.params, **params})
        )

    async def revise(
        self, caller: Caller, run_id: uuid.UUID, revision: Callable[[Run], RunUpdate | None]
    ) -> Run:
        """Like `update`, with the patch that `revision` makes of the run as it is once locked
        (None: nothing to change), so that changes made of its fields are never lost to a
        concurrent one (e.g. params merged into those it has). `revision` may raise a
        DomainError to refuse."""
        _, role = await run_role(self._db, caller, run_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            current = await locked_run(conn, run_id, "update")
            patch = revision(current)
            if patch is None:
                return current
            if patch.status is not None:
                change = _Change(patch, await _status_change(conn, current, patch.status))
            elif current.status == RunStatus.ARCHIVED:
                raise RunArchived()
            else:
                change = _Change(patch)
            updated = await self._apply(conn, current, change)
            await self._record_change(conn, caller, role, current, updated, change)
        return updated

    @staticmethod
    async def _apply(conn: asyncpg.Connection, run: Run, change: _Change) -> Run:
        """Writes the change; an archived run's capture sessions are archived with it."""
        if change.status is not None and change.status.status == RunStatus.ARCHIVED:
            await CaptureSessionRepository(conn).archive_all(run.id)
        return await RunRepository(conn).update(
            run.id, patch=change.patch, status=change.status, tags=change.tags
        )

    async def delete(self, caller: Caller, run_id: uuid.UUID) -> None:
        _, role = await run_role(self._db, caller, run_id, Role.OWNER)
        async with self._db.transaction() as conn:
            current = await locked_run(conn, run_id, "update")
            if await CaptureSessionRepository(conn).has_running(run_id):
                raise RunHasActiveCapture()
            deleted_sessions = await RunRepository(conn).delete(run_id)
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="run.deleted",
                entity_type=ENTITY,
                entry=changes.deleted(current, {"deleted_capture_sessions": deleted_sessions}),
                project_id=current.project_id,
                parent_id=current.experiment_id,
            )

    async def batch_status(
        self, caller: Caller, run_ids: list[uuid.UUID], status: RunStatus
    ) -> list[Run]:
        """All runs take `status`, or none does; the failures name each run and rule."""

        async def change(conn: asyncpg.Connection, run: Run) -> _Change:
            return _Change(status=await _status_change(conn, run, status))

        return await self._batch(caller, run_ids, change)

    async def bulk_tags(
        self,
        caller: Caller,
        run_ids: list[uuid.UUID],
        *,
        add: list[str],
        remove: list[str],
        set_: list[str] | None,
    ) -> list[Run]:
        async def change(conn: asyncpg.Connection, run: Run) -> _Change:
            if run.status == RunStatus.ARCHIVED:
                raise RunArchived()
            return _Change(tags=merged_tags(run.tags, add=add, remove=remove, set_=set_))

        return await self._batch(caller, run_ids, change)

    async def _batch(
        self,
        caller: Caller,
        run_ids: list[uuid.UUID],
        plan: Callable[[asyncpg.Connection, Run], Awaitable[_Change]],
    ) -> list[Run]:
        return await change_all(
            self._db, caller, run_ids, _RunBatch(self, plan), max_fan_out=self._max_fan_out
        )

    @staticmethod
    async def _record_change(
        conn: asyncpg.Connection,
        caller: Caller,
        role: Role,
        before_run: Run,
        after_run: Run,
        change: _Change,
    ) -> None:
        # The action names what was asked for, so a change that alters nothing is still named.
        requested = change.requested
        if "status" in requested:
            action = "run.status_changed"
        elif requested == {"tags"}:
            action = "run.tags_updated"
        else:
            action = "run.updated"
        await changes.record(
            conn,
            caller=caller,
            role=role,
            action=action,
            entity_type=ENTITY,
            entry=changes.changed(before_run, after_run),
            project_id=after_run.project_id,
            parent_id=after_run.experiment_id,
            events=_events(before_run, after_run),
        )


@dataclass(frozen=True)
class _RunBatch:
    """Runs as the items of a batch change (domain.batches)."""

    runs: Runs
    planner: Callable[[asyncpg.Connection, Run], Awaitable[_Change]]
    item: str = "run"

    async def read(
        self, conn: asyncpg.Connection, ids: list[uuid.UUID], *, for_update: bool
    ) -> dict[uuid.UUID, Run]:
        return await RunRepository(conn).get_many(ids, for_update=for_update)

    async def role(self, caller: Caller, found: Run | None) -> Role:
        return await _editor_role(caller, found)

    def not_found(self) -> DomainError:
        return RunNotFound()

    async def plan(self, conn: asyncpg.Connection, found: Run) -> _Change:
        return await self.planner(conn, found)

    def fan_out(self, found: Run, plan: _Change) -> list[tuple[uuid.UUID, str]]:
        return [(found.project_id, event.type) for event in _events(found, _preview(found, plan))]

    async def write(
        self, conn: asyncpg.Connection, caller: Caller, role: Role, found: Run, plan: _Change
    ) -> Run:
        updated = await self.runs._apply(conn, found, plan)
        await self.runs._record_change(conn, caller, role, found, updated, plan)
        return updated


def _preview(run: Run, change: _Change) -> Run:
    """The run as a batch change will leave it, as far as its webhook events go."""
    update: dict[str, object] = {}
    if change.status is not None:
        update["status"] = change.status.status
    if change.tags is not None:
        update["tags"] = change.tags
    return run.model_copy(update=update)


def _events(before: Run, after: Run) -> list[Event]:
    """The webhook events of a change: a new status, and new tags."""
    events = []
    status_event = _STATUS_EVENTS.get(after.status)
    if after.status != before.status and status_event is not None:
        events.append(Event(status_event, after))
    if after.tags != before.tags:
        events.append(Event("run.tags_updated", after))
    return events


_STATUS_EVENTS = {
    RunStatus.RUNNING: "run.started",
    RunStatus.SUCCEEDED: "run.finished",
    RunStatus.FAILED: "run.finished",
    RunStatus.ARCHIVED: "run.archived",
}
