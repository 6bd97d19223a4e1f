"""Background jobs: periodic work of a service that one process at a time does, whatever the
number of replicas (docs/jobs.md).

Each job is a row of `jobs` with its next run. A runner claims the due rows of the jobs it knows
with `FOR UPDATE SKIP LOCKED`, giving each a lease (a fresh token and `lease_until`) that it
renews while the job runs; it records the outcome only under its token, in the same transaction
as the job's `job_runs` row. A runner that dies gives its jobs back when their leases end; one
that stalled past its lease finds its token gone and records the run as `superseded`. A run that
fails (an exception, or past `timeout`) is tried again after `retry_base` seconds, doubled with
each failure in a row and never later than the job's next regular run.

Time is the injected clock's: a test moves the clock and calls `run_due()`, with no real wait.
Durations are measured on the monotonic clock.
"""

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from backend_common.clock import Clock, utc_now
from backend_common.db import UNAVAILABLE, Database
from backend_common.metrics import JOB_DURATION, JOB_RUNS
from backend_common.repositories.jobs import Claim, JobRepository
from backend_common.settings import JobSettings

_log = structlog.get_logger(__name__)

ERROR_LIMIT = 2000


@dataclass(frozen=True)
class JobContext:
    """What a run of a job is given: its name and the clock (`now` is the time it started)."""

    name: str
    now: datetime
    clock: Clock


# A job's work: what it did, as a small JSON object for the history (or None).
Work = Callable[[JobContext], Awaitable[Mapping[str, Any] | None]]


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    work: Work
    description: str = ""


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended, as the runner recorded it."""

    name: str
    status: str  # succeeded | failed | superseded
    result: Mapping[str, Any]
    error: str | None = None


def worker_name(service: str, worker: int = 0) -> str:
    return f"{service}@{socket.gethostname()}:{os.getpid()}/{worker}"


class JobRunner:
    def __init__(
        self,
        db: Database,
        jobs: Sequence[Job],
        *,
        service: str,
        clock: Clock = utc_now,
        worker: str | None = None,
        poll_interval: float = 1.0,
        lease: timedelta = timedelta(seconds=60),
        timeout: float = 900.0,
        retry_base: float = 10.0,
        concurrency: int = 2,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names repeat: {names}")
        self._db = db
        self._jobs = {job.name: job for job in jobs}
        for name in names:  # each job's series exist (at 0) before its first run
            JOB_RUNS.labels(name, "succeeded")
            JOB_RUNS.labels(name, "failed")
            JOB_DURATION.labels(name)
        self._service = service
        self._clock = clock
        self.worker = worker or worker_name(service)
        self._poll_interval = poll_interval
        self._lease = lease
        self._timeout = timeout
        self._retry_base = retry_base
        self._concurrency = concurrency
        self._registered = False
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls,
        db: Database,
        jobs: Sequence[Job],
        settings: JobSettings,
        *,
        service: str,
        clock: Clock = utc_now,
    ) -> "JobRunner":
        """A runner of `service`'s jobs (the name the job list shows them under)."""
        return cls(
            db,
            jobs,
            service=service,
            clock=clock,
            worker=worker_name(settings.service_name, settings.worker),
            poll_interval=settings.jobs_poll_interval,
            lease=timedelta(seconds=settings.jobs_lease_seconds),
            timeout=settings.jobs_timeout_seconds,
            retry_base=settings.jobs_retry_base_seconds,
            concurrency=settings.jobs_concurrency,
        )

    @property
    def names(self) -> list[str]:
        return list(self._jobs)

    async def register(self) -> None:
        """The rows of this runner's jobs: new ones due now; known ones keep their schedule
        (their interval and description follow the code)."""
        jobs = list(self._jobs.values())
        async with self._db.transaction() as conn:
            await JobRepository(conn).register(
                service=self._service,
                names=[job.name for job in jobs],
                descriptions=[job.description for job in jobs],
                intervals=[job.every.total_seconds() for job in jobs],
                now=self._clock(),
            )
        self._registered = True

    async def start(self) -> None:
        await self.register()
        self._loop = asyncio.create_task(self._run())
        _log.info("job_runner_started", jobs=self.names, worker=self.worker)

    async def stop(self) -> None:
        """Stops claiming; a job running now is cut (its lease ends, another runner retries)."""
        if self._loop is not None:
            while not self._loop.done():
                self._loop.cancel()
                await asyncio.wait({self._loop}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        _log.info("job_runner_stopped", worker=self.worker)

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_due()
            except UNAVAILABLE as exc:
                _log.warning("jobs_claim_failed", error=repr(exc))
            except Exception:
                _log.exception("jobs_claim_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def run_due(self) -> list[RunOutcome]:
        """Runs every job of this runner that is due and free, `concurrency` at a time, until
        none is; how each run ended."""
        if not self._registered:
            await self.register()
        outcomes: list[RunOutcome] = []
        while True:
            async with self._db.transaction() as conn:
                claims = await JobRepository(conn).claim(
                    self.names,
                    now=self._clock(),
                    lease=self._lease,
                    limit=self._concurrency,
                    worker=self.worker,
                )
            if not claims:
                return outcomes
            outcomes += await asyncio.gather(*(self._run_one(claim) for claim in claims))

    async def _run_one(self, claim: Claim) -> RunOutcome:
        job = self._jobs[claim.name]
        started_at = self._clock()
        began = time.monotonic()
        result: Mapping[str, Any] = {}
        error: str | None = None
        renewal = asyncio.create_task(self._keep_lease(claim))
        try:
            async with asyncio.timeout(self._timeout):
                result = await job.work(JobContext(job.name, started_at, self._clock)) or {}
        except asyncio.CancelledError:
            renewal.cancel()
            raise
        except TimeoutError:
            error = f"Cut after {self._timeout:g} s."
        except Exception as exc:
            _log.exception("job_failed", job=job.name)
            error = repr(exc)[:ERROR_LIMIT]
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        duration_ms = int((time.monotonic() - began) * 1000)
        return await self._record(claim, job, started_at, duration_ms, dict(result), error)

    async def _keep_lease(self, claim: Claim) -> None:
        """Renews the lease a few times per lease while the job runs."""
        period = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(period)
            try:
                async with self._db.transaction() as conn:
                    kept = await JobRepository(conn).renew(claim, until=self._clock() + self._lease)
                if not kept:
                    _log.warning("job_lease_lost", job=claim.name, worker=self.worker)
                    return
            except Exception as exc:
                _log.warning("job_lease_renewal_failed", job=claim.name, error=repr(exc))

    def _retry_wait(self, job: Job, failures: int) -> timedelta:
        wait = self._retry_base * 2 ** min(failures - 1, 30)
        return min(job.every, timedelta(seconds=wait))

    async def _record(
        self,
        claim: Claim,
        job: Job,
        started_at: datetime,
        duration_ms: int,
        result: dict[str, Any],
        error: str | None,
    ) -> RunOutcome:
        finished_at = self._clock()
        failures = 0 if error is None else claim.failures + 1
        wait = job.every if error is None else self._retry_wait(job, failures)
        async with self._db.transaction() as conn:
            jobs = JobRepository(conn)
            kept = await jobs.release(claim, next_run_at=finished_at + wait, failures=failures)
            status = "superseded" if not kept else "succeeded" if error is None else "failed"
            await jobs.log_run(
                job=job.name,
                worker=self.worker,
                attempt=claim.failures + 1,
                started_at=started_at,
                finished_at=finished_at,
                duration_ms=duration_ms,
                status=status,
                error=error,
                result=result,
            )
        JOB_RUNS.labels(job.name, status).inc()
        JOB_DURATION.labels(job.name).observe(duration_ms / 1000)
        # A run that found nothing to do (every count zero) is recorded, but logged quietly: jobs
        # that look every few seconds would fill an idle stack's log.
        idle = isinstance(result, dict) and not any(result.values())
        log = _log.warning if status != "succeeded" else _log.debug if idle else _log.info
        log("job_run", job=job.name, status=status, ms=duration_ms, error=error, result=result)
        return RunOutcome(job.name, status, result, error)
