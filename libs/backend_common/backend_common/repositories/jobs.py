"""SQL of the job runner (`jobs`, `job_runs`; migration experiment/0012). Every instant is the
runner's clock, passed in: a test that moves the clock moves the schedule with it."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from pydantic import Field

from backend_common.pagination import CursorKey, Page, PageRequest

_REGISTER = """
    INSERT INTO jobs (name, service, description, interval_seconds, next_run_at)
    SELECT name, $2, description, interval_seconds, $5
    FROM unnest($1::text[], $3::text[], $4::float8[]) AS j(name, description, interval_seconds)
    ON CONFLICT (name) DO UPDATE
        SET service = EXCLUDED.service, description = EXCLUDED.description,
            interval_seconds = EXCLUDED.interval_seconds
"""
# Due jobs of this runner that nobody holds (or whose holder's lease ran out), oldest due first.
_CLAIM = """
    WITH due AS (
        SELECT name FROM jobs
        WHERE name = ANY($1::text[]) AND next_run_at <= $2
          AND (lease_until IS NULL OR lease_until <= $2)
        ORDER BY next_run_at, name
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs j
    SET lease_token = gen_random_uuid(), lease_until = $2 + $4::interval, leased_by = $5
    FROM due WHERE j.name = due.name
    RETURNING j.name, j.lease_token, j.failures
"""
_RENEW = """
    UPDATE jobs SET lease_until = $3 WHERE name = $1 AND lease_token = $2 RETURNING true
"""
_RELEASE = """
    UPDATE jobs
    SET lease_token = NULL, lease_until = NULL, leased_by = NULL, next_run_at = $3, failures = $4
    WHERE name = $1 AND lease_token = $2
    RETURNING true
"""
# Work for a job arrived (e.g. a project to delete): it runs at its next claim, not its interval.
_DUE_NOW = "UPDATE jobs SET next_run_at = least(next_run_at, $2) WHERE name = $1"
_LOG_RUN = """
    INSERT INTO job_runs (job, worker, attempt, started_at, finished_at, duration_ms, status,
                          error, result)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""
_RUN_COLUMNS = (
    "id, job, worker, attempt, started_at, finished_at, duration_ms, status, error, result"
)
_LIST = f"""
    SELECT j.name, j.service, j.description, j.interval_seconds, j.next_run_at, j.failures,
           j.leased_by, j.lease_until, last.*
    FROM jobs j
    LEFT JOIN LATERAL (
        SELECT {_RUN_COLUMNS} FROM job_runs r WHERE r.job = j.name ORDER BY r.id DESC LIMIT 1
    ) last ON true
    WHERE $1::text IS NULL OR j.name > $1
    ORDER BY j.name
    LIMIT $2
"""
_EXISTS = "SELECT EXISTS (SELECT 1 FROM jobs WHERE name = $1)"
_RUNS = f"""
    SELECT {_RUN_COLUMNS} FROM job_runs
    WHERE job = $1 AND ($2::bigint IS NULL OR id < $2)
    ORDER BY id DESC
    LIMIT $3
"""
# Each job's last run stays, however old: the job list shows it.
_PURGE_RUNS = """
    DELETE FROM job_runs WHERE id IN (
        SELECT id FROM job_runs r
        WHERE finished_at < $1
          AND id <> (SELECT max(l.id) FROM job_runs l WHERE l.job = r.job)
        ORDER BY id LIMIT $2
    )
"""


@dataclass(frozen=True)
class Claim:
    """A job this runner holds until it records the outcome (or its lease runs out)."""

    name: str
    lease_token: uuid.UUID
    failures: int


@dataclass(frozen=True)
class JobRun:
    id: int
    job: str
    worker: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    status: str
    error: str | None
    result: dict[str, Any]


@dataclass(frozen=True)
class JobState:
    """A job as the runners see it, with its last run."""

    name: str
    service: str
    description: str
    interval_seconds: float
    next_run_at: datetime
    failures: int
    leased_by: str | None
    lease_until: datetime | None
    last_run: JobRun | None


class JobKey(CursorKey):
    """Cursor of the job list, in name order."""

    name: str = Field(min_length=1, max_length=100)


class JobRunKey(CursorKey):
    """Cursor of a job's runs, newest first."""

    id: int = Field(ge=0, le=2**63 - 1)


def _run(row: asyncpg.Record) -> JobRun:
    return JobRun(
        id=row["id"],
        job=row["job"],
        worker=row["worker"],
        attempt=row["attempt"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_ms=row["duration_ms"],
        status=row["status"],
        error=row["error"],
        result=row["result"],
    )


class JobRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def register(
        self,
        *,
        service: str,
        names: Sequence[str],
        descriptions: Sequence[str],
        intervals: Sequence[float],
        now: datetime,
    ) -> None:
        """Adds the jobs that are new (due now); known ones keep their schedule."""
        await self._conn.execute(
            _REGISTER, list(names), service, list(descriptions), list(intervals), now
        )

    async def claim(
        self, names: Sequence[str], *, now: datetime, lease: timedelta, limit: int, worker: str
    ) -> list[Claim]:
        rows = await self._conn.fetch(_CLAIM, list(names), now, limit, lease, worker)
        return [Claim(row["name"], row["lease_token"], row["failures"]) for row in rows]

    async def renew(self, claim: Claim, *, until: datetime) -> bool:
        """Extends the lease; False if it has passed to another runner."""
        return bool(await self._conn.fetchval(_RENEW, claim.name, claim.lease_token, until))

    async def release(self, claim: Claim, *, next_run_at: datetime, failures: int) -> bool:
        """Gives the job back with its next run; False if the lease had passed to another."""
        return bool(
            await self._conn.fetchval(
                _RELEASE, claim.name, claim.lease_token, next_run_at, failures
            )
        )

    async def due_now(self, name: str, *, now: datetime) -> None:
        """Brings the job's next run forward to `now` (a job not registered yet is due anyway)."""
        await self._conn.execute(_DUE_NOW, name, now)

    async def log_run(
        self,
        *,
        job: str,
        worker: str,
        attempt: int,
        started_at: datetime,
        finished_at: datetime,
        duration_ms: int,
        status: str,
        error: str | None,
        result: dict[str, Any],
    ) -> None:
        await self._conn.execute(
            _LOG_RUN,
            job,
            worker,
            attempt,
            started_at,
            finished_at,
            duration_ms,
            status,
            error,
            result,
        )

    async def find(self, page: PageRequest) -> Page[JobState]:
        after = page.after(JobKey)
        rows = await self._conn.fetch(_LIST, None if after is None else after.name, page.fetch)
        states = [
            JobState(
                name=row["name"],
                service=row["service"],
                description=row["description"],
                interval_seconds=row["interval_seconds"],
                next_run_at=row["next_run_at"],
                failures=row["failures"],
                leased_by=row["leased_by"] if row["lease_until"] is not None else None,
                lease_until=row["lease_until"],
                last_run=None if row["id"] is None else _run(row),
            )
            for row in rows
        ]
        return page.page(states, key=lambda state: JobKey(name=state.name))

    async def exists(self, name: str) -> bool:
        return bool(await self._conn.fetchval(_EXISTS, name))

    async def runs(self, name: str, page: PageRequest) -> Page[JobRun]:
        """The job's runs, newest first."""
        after = page.after(JobRunKey)
        rows = await self._conn.fetch(_RUNS, name, None if after is None else after.id, page.fetch)
        return page.page([_run(row) for row in rows], key=lambda run: JobRunKey(id=run.id))

    async def purge_runs(self, *, before: datetime, limit: int) -> int:
        """Deletes at most `limit` runs that finished before `before` (but each job's last);
        how many."""
        result = await self._conn.execute(_PURGE_RUNS, before, limit)
        return int(result.split()[-1])
