"""Comparing runs of one project: their params side by side, their metric summaries with deltas
against a baseline run, and the telemetry of their capture sessions (statistics per bound sensor,
and one sensor's traces overlaid from each session's start).

Who may compare: a member (any role) of the runs' project. A run the caller cannot read does not
exist for them (404, whichever run it is); runs of several projects that the caller can all read
are refused (422) rather than mixed.
"""

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from backend_common.db import Database
from backend_common.rbac import Caller
from experiment_service.domain.comparison_models import (
    MAX_OVERLAY_BUCKETS,
    BoundSensorRef,
    ComparedRun,
    CompareRequest,
    Comparison,
    MetricDelta,
    MetricRow,
    MetricValue,
    Overlay,
    OverlayBuckets,
    OverlayRequest,
    OverlayRun,
    OverlaySession,
    ParamRow,
    SessionRef,
    SessionStats,
    TelemetryRow,
    Trace,
)
from experiment_service.domain.errors import (
    OverlayTooLarge,
    RunNotFound,
    RunsInSeveralProjects,
    SensorNotFound,
)
from experiment_service.domain.metric_models import MetricSummary
from experiment_service.domain.models import Run
from experiment_service.repositories.comparison import ComparisonRepository
from experiment_service.repositories.metrics import MetricRepository
from experiment_service.repositories.runs import RunRepository


class Comparisons:
    def __init__(self, db: Database, *, max_overlay_buckets: int = MAX_OVERLAY_BUCKETS) -> None:
        self._db = db
        self._max_overlay_buckets = max_overlay_buckets

    async def compare(self, caller: Caller, request: CompareRequest) -> Comparison:
        runs = await self._readable_runs(caller, request.run_ids)
        run_ids = [run.id for run in runs]
        # One snapshot for everything read about the runs, so the parts agree with each other.
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            repository = ComparisonRepository(conn)
            summaries = await MetricRepository(conn).summaries_of_runs(run_ids)
            sessions = await repository.sessions(run_ids)
            bound = await repository.bound_sensors(run_ids)
            stats = await repository.session_stats(_bound_pairs(sessions, bound))
        return Comparison(
            baseline=request.baseline,
            runs=[_compared(run) for run in runs],
            params=param_rows(runs, only_diff=request.only_diff),
            metrics=metric_rows(
                run_ids, summaries, baseline=request.baseline, only_diff=request.only_diff
            ),
            telemetry=telemetry_rows(run_ids, sessions, bound, stats),
        )

    async def overlay(self, caller: Caller, request: OverlayRequest) -> Overlay:
        runs = await self._readable_runs(caller, request.run_ids)
        run_ids = [run.id for run in runs]
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            repository = ComparisonRepository(conn)
            if not await repository.sensor_in_project(request.sensor_id, runs[0].project_id):
                raise SensorNotFound(f"No such sensor in the runs' project: {request.sensor_id}.")
            sessions = [s for s in await repository.sessions(run_ids) if s.started_at is not None]
            if len(sessions) * request.points > self._max_overlay_buckets:
                raise OverlayTooLarge(
                    f"{len(sessions)} capture sessions of {request.points} points each would be"
                    f" more than {self._max_overlay_buckets} buckets: ask for fewer points or"
                    " runs."
                )
            traces = await repository.session_traces(
                [session.id for session in sessions],
                sensor_id=request.sensor_id,
                signal=request.signal,
                points=request.points,
            )
        widths = {trace.width_us for trace in traces}
        return Overlay(
            sensor_id=request.sensor_id,
            signal=request.signal,
            points=request.points,
            bucket_seconds=widths.pop() / 1e6 if widths else None,
            runs=overlay_runs(run_ids, sessions, traces),
        )

    async def _readable_runs(self, caller: Caller, run_ids: Sequence[uuid.UUID]) -> list[Run]:
        """The runs in the order asked, all of one project the caller is a member of."""
        async with self._db.connection() as conn:
            found = await RunRepository(conn).get_many(list(run_ids))
        # Asked once per project, with no connection held (the auth service may be asked).
        readable: dict[uuid.UUID, bool] = {}
        for run_id in run_ids:
            run = found.get(run_id)
            if run is not None and run.project_id not in readable:
                readable[run.project_id] = await caller.membership(run.project_id) is not None
            if run is None or not readable[run.project_id]:
                raise RunNotFound(f"No such run: {run_id}.")
        if len(readable) > 1:
            raise RunsInSeveralProjects(
                f"The runs belong to {len(readable)} projects; compare runs of one project."
            )
        return [found[run_id] for run_id in run_ids]


def _compared(run: Run) -> ComparedRun:
    return ComparedRun.model_validate(run.model_dump(include=set(ComparedRun.model_fields)))


# --- params -------------------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """A hashable form of a JSON value in which equal values are equal: 1 and 1.0 are one
    number, but true is not 1, and key order does not matter."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(_canonical(item) for item in value))
    return ("object", frozenset((key, _canonical(item)) for key, item in value.items()))


_MISSING = ("missing",)


def param_rows(runs: Sequence[Run], *, only_diff: bool) -> list[ParamRow]:
    """One row per param key of any run, by key; a key differs when some run lacks it or two
    runs hold different values."""
    keys = sorted({key for run in runs for key in run.params})
    rows = []
    for key in keys:
        seen = {_canonical(run.params[key]) if key in run.params else _MISSING for run in runs}
        differs = len(seen) > 1
        if differs or not only_diff:
            values = {run.id: run.params[key] for run in runs if key in run.params}
            rows.append(ParamRow(key=key, differs=differs, values=values))
    return rows


# --- metrics ------------------------------------------------------------------------------------


def _minus(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or not math.isfinite(value - baseline):
        return None
    return value - baseline


def _delta(summary: MetricSummary, baseline: MetricSummary | None) -> MetricDelta | None:
    if baseline is None:
        return None
    return MetricDelta(
        min=_minus(summary.min, baseline.min),
        max=_minus(summary.max, baseline.max),
        avg=_minus(summary.avg, baseline.avg),
        last=_minus(summary.last, baseline.last),
    )


def _metric_value(summary: MetricSummary, baseline: MetricSummary | None) -> MetricValue:
    return MetricValue(
        count=summary.count,
        min=summary.min,
        max=summary.max,
        avg=summary.avg,
        last=summary.last,
        last_step=summary.last_step,
        delta=_delta(summary, baseline),
    )


def _same_key(summary: MetricSummary) -> tuple[str, ...]:
    # repr tells every float apart and makes NaN equal to NaN.
    fields = (summary.count, summary.min, summary.max, summary.avg, summary.last)
    return (*(repr(field) for field in fields), str(summary.last_step))


def metric_rows(
    run_ids: Sequence[uuid.UUID],
    summaries: Iterable[tuple[uuid.UUID, MetricSummary]],
    *,
    baseline: uuid.UUID,
    only_diff: bool,
) -> list[MetricRow]:
    """One row per metric name of any run, by name, with each run's summary and its delta
    against the baseline run's (None when the baseline does not have the metric). A metric
    differs when some run lacks it or two runs' summaries are not the same."""
    by_name: dict[str, dict[uuid.UUID, MetricSummary]] = defaultdict(dict)
    for run_id, summary in summaries:
        by_name[summary.name][run_id] = summary
    rows = []
    for name in sorted(by_name):
        of_run = by_name[name]
        seen = {_same_key(of_run[run_id]) if run_id in of_run else _MISSING for run_id in run_ids}
        differs = len(seen) > 1
        if only_diff and not differs:
            continue
        reference = of_run.get(baseline)
        values = {
            run_id: _metric_value(of_run[run_id], reference)
            for run_id in run_ids
            if run_id in of_run
        }
        rows.append(MetricRow(name=name, differs=differs, values=values))
    return rows


# --- telemetry ----------------------------------------------------------------------------------


def _bound_pairs(
    sessions: Sequence[SessionRef], bound: Sequence[BoundSensorRef]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(capture session, sensor) for every session and every sensor bound to its run."""
    sensors_of: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for binding in bound:
        sensors_of[binding.run_id].append(binding.sensor_id)
    return [
        (session.id, sensor_id) for session in sessions for sensor_id in sensors_of[session.run_id]
    ]


def telemetry_rows(
    run_ids: Sequence[uuid.UUID],
    sessions: Sequence[SessionRef],
    bound: Sequence[BoundSensorRef],
    stats: Iterable[SessionStats],
) -> list[TelemetryRow]:
    """Per run (in the order asked), capture session (by ordinal), bound sensor (by name) and
    signal: the statistics, or one row with count 0 for a sensor without values there."""
    of_pair: dict[tuple[uuid.UUID, uuid.UUID], list[SessionStats]] = defaultdict(list)
    for item in stats:
        of_pair[(item.capture_session_id, item.sensor_id)].append(item)
    sessions_of: dict[uuid.UUID, list[SessionRef]] = defaultdict(list)
    for session in sessions:
        sessions_of[session.run_id].append(session)
    sensors_of: dict[uuid.UUID, list[BoundSensorRef]] = defaultdict(list)
    for binding in bound:
        sensors_of[binding.run_id].append(binding)
    rows = []
    for run_id in run_ids:
        for session in sessions_of[run_id]:
            for sensor in sensors_of[run_id]:
                place = {
                    "run_id": run_id,
                    "capture_session_id": session.id,
                    "ordinal_number": session.ordinal_number,
                    "started_at": session.started_at,
                    "stopped_at": session.stopped_at,
                    "sensor_id": sensor.sensor_id,
                    "sensor_name": sensor.name,
                }
                found = sorted(of_pair[(session.id, sensor.sensor_id)], key=lambda s: s.signal)
                if not found:
                    rows.append(
                        TelemetryRow(
                            **place, signal=None, count=0, min=None, max=None, avg=None, twa=None
                        )
                    )
                rows.extend(
                    TelemetryRow(
                        **place,
                        signal=item.signal,
                        count=item.count,
                        min=item.min,
                        max=item.max,
                        avg=item.avg,
                        twa=item.twa,
                    )
                    for item in found
                )
    return rows


def overlay_runs(
    run_ids: Sequence[uuid.UUID], sessions: Sequence[SessionRef], traces: Iterable[Trace]
) -> list[OverlayRun]:
    """Each run (in the order asked) with its capture sessions (by ordinal) and their buckets
    (none for a session without readings)."""
    of_session = {trace.capture_session_id: trace.buckets for trace in traces}
    nothing = OverlayBuckets(t=[], count=[], min=[], max=[], first=[], last=[])
    sessions_of: dict[uuid.UUID, list[OverlaySession]] = defaultdict(list)
    for session in sessions:
        sessions_of[session.run_id].append(
            OverlaySession(
                capture_session_id=session.id,
                ordinal_number=session.ordinal_number,
                started_at=session.started_at,
                stopped_at=session.stopped_at,
                buckets=of_session.get(session.id, nothing),
            )
        )
    return [OverlayRun(run_id=run_id, sessions=sessions_of[run_id]) for run_id in run_ids]
