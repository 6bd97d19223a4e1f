"""Run metrics: logging step metrics into a run, and reading them back.

Logging (editors and owners): a batch is checked all at once (domain.metric_batch), then stored
in one transaction: the run is share-locked (an archived run refuses, 409; a finished one takes
the points marked late), the batch row is inserted once per client batch id (a resend stores
nothing and says so), missing steps are filled, the points go in with one COPY, and what the
batch adds is merged into the run's summaries and tiles. Points are data, like telemetry
readings: no audit entry or webhook per batch (the batch row keeps who logged it and when).

Reading (any member): the summaries, a series page by page, a chart of a series
(domain.metric_chart), and live: new batches on a stream per run (domain.metric_live).
"""

import uuid
from collections.abc import Sequence
from datetime import timedelta

import asyncpg

from backend_common.batches import Limits
from backend_common.clock import Clock
from backend_common.db import Database
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller, Role
from backend_common.statuses import Arrival, arrival
from experiment_service.domain import metric_chart
from experiment_service.domain.access import locked_run, run_access
from experiment_service.domain.errors import MetricNotFound, RunArchived, RunNotFound
from experiment_service.domain.metric_batch import (
    MAX_NAME_LENGTH,
    fill_steps,
    parse_metrics,
    partials,
)
from experiment_service.domain.metric_models import (
    Chart,
    Logged,
    MetricPoint,
    MetricSummary,
    SeriesFilter,
)
from experiment_service.domain.models import Run
from experiment_service.repositories.metric_series import SeriesRepository
from experiment_service.repositories.metrics import MetricRepository
from experiment_service.repositories.runs import RunRepository

_PROJECTS_REMEMBERED = 10_000


class RunMetrics:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        max_points: int = 10_000,
        max_future: timedelta = timedelta(minutes=5),
        max_scanned: int = metric_chart.MAX_SCANNED,
    ) -> None:
        self._db = db
        self._clock = clock
        self._limits = Limits(max_items=max_points, max_future=max_future)
        self._max_scanned = max_scanned
        self._projects: dict[uuid.UUID, uuid.UUID] = {}  # run → project, oldest first

    async def log(self, caller: Caller, run_id: uuid.UUID, document: object) -> Logged:
        """Stores the batch in `document` (the decoded JSON body) in the run."""
        batch = parse_metrics(document, received_at=self._clock(), limits=self._limits)
        await caller.require(await self._project_of(run_id), Role.EDITOR, not_found=RunNotFound)
        async with self._db.transaction() as conn:
            run = await locked_run(conn, run_id, "share")
            when = arrival(run.status)
            if when is Arrival.REFUSED:
                raise RunArchived("The run is archived: it takes no more metrics.")
            late = when is Arrival.LATE
            metrics = MetricRepository(conn)
            batch_id = await metrics.insert_batch(
                run_id=run_id,
                client_batch_id=batch.client_batch_id,
                points=len(batch),
                late=late,
                received_at=batch.received_at,
                logged_by=caller.user_id,
            )
            if batch_id is None:
                assert batch.client_batch_id is not None
                stored = await metrics.stored_batch(run_id, batch.client_batch_id)
                return Logged(
                    run_id,
                    batch.client_batch_id,
                    accepted=stored.points,
                    late=stored.points if stored.late else 0,
                    duplicate=True,
                )
            missing = batch.missing_steps()
            highest = await metrics.highest_steps(run_id, missing) if missing else {}
            steps = fill_steps(batch, highest)
            await metrics.copy_points(
                batch_id=batch_id, run_id=run_id, batch=batch, steps=steps, late=late
            )
            await metrics.merge(run_id, *partials(batch, steps))
        return Logged(
            run_id,
            batch.client_batch_id,
            accepted=len(batch),
            late=len(batch) if late else 0,
            duplicate=False,
        )

    async def _project_of(self, run_id: uuid.UUID) -> uuid.UUID:
        """The run's project (RunNotFound if there is no such run). A run never changes
        project, so the projects of the runs being logged into are remembered (training code
        logs into one run many times a second); one deleted meanwhile is found missing once
        its row is locked."""
        project_id = self._projects.get(run_id)
        if project_id is None:
            async with self._db.connection() as conn:
                run = await RunRepository(conn).get(run_id)
            if run is None:
                raise RunNotFound()
            project_id = self._projects[run_id] = run.project_id
            if len(self._projects) > _PROJECTS_REMEMBERED:
                self._projects.pop(next(iter(self._projects)))
        return project_id

    async def summaries(
        self, caller: Caller, run_id: uuid.UUID, page: PageRequest
    ) -> Page[MetricSummary]:
        """The run's metrics by name, each with its summary."""
        async with self._db.connection() as conn:
            await run_access(conn, caller, run_id, Role.VIEWER)
            return await MetricRepository(conn).summaries(run_id, page)

    async def summaries_of(
        self, caller: Caller, runs: Sequence[Run]
    ) -> dict[uuid.UUID, list[MetricSummary]]:
        """Every metric of each of `runs` (read by the caller already), by run id and name."""
        for project_id in {run.project_id for run in runs}:
            await caller.require(project_id, Role.VIEWER, not_found=RunNotFound)
        found: dict[uuid.UUID, list[MetricSummary]] = {run.id: [] for run in runs}
        if runs:
            async with self._db.connection() as conn:
                rows = await MetricRepository(conn).summaries_of_runs(list(found))
            for run_id, summary in rows:
                found[run_id].append(summary)
        return found

    async def series(
        self, caller: Caller, run_id: uuid.UUID, name: str, flt: SeriesFilter, page: PageRequest
    ) -> Page[MetricPoint]:
        """A page of the metric's points in step order."""
        async with self._db.connection() as conn:
            await self._metric(conn, caller, run_id, name)
            return await SeriesRepository(conn).page(run_id, name, flt, page)

    async def chart(
        self, caller: Caller, run_id: uuid.UUID, name: str, flt: SeriesFilter, *, points: int
    ) -> Chart:
        """The metric's points in the range, cut to at most `points` keeping its extremes."""
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            await self._metric(conn, caller, run_id, name)
            return await metric_chart.chart(
                SeriesRepository(conn),
                run_id,
                name,
                flt,
                points=points,
                max_scanned=self._max_scanned,
            )

    async def readable(self, caller: Caller, run_id: uuid.UUID) -> None:
        """Raises RunNotFound unless the caller may read the run's metrics."""
        async with self._db.connection() as conn:
            await run_access(conn, caller, run_id, Role.VIEWER)

    @staticmethod
    async def _metric(
        conn: asyncpg.Connection, caller: Caller, run_id: uuid.UUID, name: str
    ) -> None:
        """Raises RunNotFound unless the caller may read the run, MetricNotFound unless it has
        that metric."""
        await run_access(conn, caller, run_id, Role.VIEWER)
        if len(name) > MAX_NAME_LENGTH or "\x00" in name:
            raise MetricNotFound()  # no metric can be named so (and PostgreSQL holds no NUL)
        if await MetricRepository(conn).summary(run_id, name) is None:
            raise MetricNotFound()
