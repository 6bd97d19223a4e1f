"""Runs and capture sessions the service changes by itself (the jobs `runs.fail_stale` and
`capture_sessions.reconcile`, docs/jobs.md). Each change is made under the same row locks as a
person's, checked again under them, and recorded like one: an audit row without an actor
(`request_id` names the job) and the webhook events.

- A running run with no change, no telemetry and no metric for its project's stale time
  (`stale_run_after_seconds`, default 24 h) becomes `failed` with `failure_reason: "stale"`;
  its running capture session is stopped as `failed` first. Events: `run.finished` (as for
  every finish) and `run.failed`.
- A capture session started with `duration_seconds` stops itself (`succeeded`) when they have
  elapsed, dated at its planned stop.
- A capture session still running in a run that is no longer running (left by an older version,
  or a direct database change) is closed: `succeeded` in a succeeded run, else `failed`.
"""

import uuid
from datetime import datetime, timedelta

import asyncpg

from backend_common.db import Database
from backend_common.statuses import CaptureStatus, RunStatus
from experiment_service.domain import changes
from experiment_service.domain.models import CaptureSession, StatusChange
from experiment_service.domain.webhooks.outbox import Event
from experiment_service.repositories.capture_sessions import CaptureSessionRepository
from experiment_service.repositories.run_activity import RunActivityRepository
from experiment_service.repositories.runs import RunRepository

STALE = "stale"
STALE_CAPTURE = "The run went stale: no change, telemetry or metric for its stale time."
_TAKE = 100


class Upkeep:
    def __init__(self, db: Database, *, stale_after: timedelta) -> None:
        self._db = db
        self._stale_after = stale_after  # where the project sets none

    async def fail_stale_runs(self, now: datetime, *, job: str) -> int:
        """Fails the runs stale at `now`; how many."""
        failed = 0
        while True:
            async with self._db.connection() as conn:
                run_ids = await RunActivityRepository(conn).stale(
                    now=now, default_after=self._stale_after, limit=_TAKE
                )
            for run_id in run_ids:
                failed += await self._fail_stale(run_id, now, job)
            if len(run_ids) < _TAKE:
                return failed

    async def _fail_stale(self, run_id: uuid.UUID, now: datetime, job: str) -> int:
        async with self._db.transaction() as conn:
            runs = RunRepository(conn)
            run = await runs.get(run_id, for_update=True)
            if run is None or run.status != RunStatus.RUNNING:
                return 0
            # Checked again under the run's lock: a change or a batch may have come since.
            still = await RunActivityRepository(conn).stale(
                now=now, default_after=self._stale_after, limit=1, among=[run_id]
            )
            if not still:
                return 0
            sessions = CaptureSessionRepository(conn)
            running = await sessions.running_of(run_id)
            if running is not None:
                await self._stop(
                    conn, running, CaptureStatus.FAILED, STALE_CAPTURE, job=job, at=now
                )
            duration = None if run.started_at is None else (now - run.started_at).total_seconds()
            failed = await runs.update(
                run_id,
                status=StatusChange(
                    RunStatus.FAILED,
                    finished_at=now,
                    duration_seconds=max(duration, 0.0) if duration is not None else None,
                    failure_reason=STALE,
                ),
            )
            await changes.record(
                conn,
                caller=None,
                role=None,
                action="run.status_changed",
                entity_type="run",
                entry=changes.changed(run, failed),
                project_id=failed.project_id,
                parent_id=failed.experiment_id,
                events=[Event("run.finished", failed, now), Event("run.failed", failed, now)],
                request_id=f"job:{job}",
            )
        return 1

    async def stop_due_captures(self, now: datetime, *, job: str) -> int:
        """Stops the sessions whose duration has elapsed by `now`; how many."""
        stopped = 0
        while True:
            async with self._db.connection() as conn:
                due = await CaptureSessionRepository(conn).due_to_stop(now, _TAKE)
            for session in due:
                assert session.planned_stop_at is not None
                stopped += await self._stop_locked(
                    session, CaptureStatus.SUCCEEDED, None, job=job, at=session.planned_stop_at
                )
            if len(due) < _TAKE:
                return stopped

    async def close_captures_of_ended_runs(self, now: datetime, *, job: str) -> int:
        """Closes the sessions still running in runs that are not; how many."""
        closed = 0
        while True:
            async with self._db.connection() as conn:
                found = await CaptureSessionRepository(conn).of_ended_runs(_TAKE)
            for session, run_status, finished_at in found:
                succeeded = run_status == RunStatus.SUCCEEDED
                closed += await self._stop_locked(
                    session,
                    CaptureStatus.SUCCEEDED if succeeded else CaptureStatus.FAILED,
                    None if succeeded else f"The run is {run_status}; the session was closed.",
                    job=job,
                    at=min(finished_at or now, now),
                )
            if len(found) < _TAKE:
                return closed

    async def _stop_locked(
        self,
        session: CaptureSession,
        status: CaptureStatus,
        reason: str | None,
        *,
        job: str,
        at: datetime,
    ) -> int:
        """Stops the session under its run's lock if it is still running; 1 if it did."""
        async with self._db.transaction() as conn:
            if await RunRepository(conn).get(session.run_id, for_update=True) is None:
                return 0
            current = await CaptureSessionRepository(conn).get(
                session.id, session.run_id, for_update=True
            )
            if current is None or current.status != CaptureStatus.RUNNING:
                return 0
            await self._stop(conn, current, status, reason, job=job, at=at)
        return 1

    @staticmethod
    async def _stop(
        conn: asyncpg.Connection,
        session: CaptureSession,
        status: CaptureStatus,
        reason: str | None,
        *,
        job: str,
        at: datetime,
    ) -> None:
        """Stops the session at `at` (not before it started), recorded as the job's change."""
        stopped = await CaptureSessionRepository(conn).stop(
            session.id,
            status=status,
            stopped_at=max(at, session.started_at or at),
            failure_reason=reason,
        )
        await changes.record(
            conn,
            caller=None,
            role=None,
            action="capture_session.stopped",
            entity_type="capture_session",
            entry=changes.changed(session, stopped),
            project_id=stopped.project_id,
            parent_id=stopped.run_id,
            events=[Event("capture_session.stopped", stopped, at)],
            request_id=f"job:{job}",
        )
