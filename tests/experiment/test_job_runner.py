"""The job runner (backend_common.jobs) on the experiment database, with jobs of the test's own:
runners sharing the jobs run each once, a failed run is retried with backoff, a dead runner's
claim comes back after its lease, a stalled one's late outcome is `superseded`. What they
recorded is read through GET /api/v1/jobs."""

import asyncio
from datetime import timedelta

from backend_common.db import Database, create_pool
from backend_common.jobs import Job, JobRunner
from backend_common.keys import DATABASE
from backend_common.repositories.jobs import JobRepository
from tests.experiment.job_kit import job_list, job_runs
from tests.plugins.waiting import eventually

MINUTE = timedelta(minutes=1)


def runner(client, jobs, clock, **overrides) -> JobRunner:
    values = {"service": "test", "clock": clock, "retry_base": 10.0, "concurrency": 2}
    return JobRunner(client.app[DATABASE], jobs, **(values | overrides))


async def test_runners_racing_run_each_due_job_once(jobs_app, operator, clock, database_url):
    client = await jobs_app()
    done: list[str] = []

    def counting(name: str) -> Job:
        async def work(context):
            done.append(name)
            await asyncio.sleep(0.01)
            return {"at": context.now.isoformat()}

        return Job(name, MINUTE, work)

    jobs = [counting(f"test.job_{n}") for n in range(6)]
    pools = [await create_pool(database_url("experiment"), max_size=3) for _ in range(3)]
    try:
        runners = [
            JobRunner(Database(pool), jobs, service="test", clock=clock, worker=f"r{n}")
            for n, pool in enumerate(pools)
        ]
        outcomes = await asyncio.gather(*(r.run_due() for r in runners))
        assert sorted(done) == sorted(job.name for job in jobs)
        assert sum(len(o) for o in outcomes) == 6
        # Nothing is due again until the interval has passed.
        assert await asyncio.gather(*(r.run_due() for r in runners)) == [[], [], []]
        clock.advance(60)
        await asyncio.gather(*(r.run_due() for r in runners))
    finally:
        for pool in pools:
            await pool.close()
    assert len(done) == 12
    listed = await job_list(client, operator)
    for job in jobs:
        runs = await job_runs(client, operator, job.name)
        assert [run["status"] for run in runs] == ["succeeded", "succeeded"]
        assert listed[job.name]["last_run"] == runs[0]


async def test_failed_run_is_retried_with_backoff_up_to_its_interval(jobs_app, operator, clock):
    client = await jobs_app()
    answers = [RuntimeError("down"), RuntimeError("still down"), RuntimeError("again"), None]

    async def flaky(context):
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return {"ok": True}

    job = Job("test.flaky", timedelta(seconds=30), flaky)
    jobs = runner(client, [job], clock)
    outcome = (await jobs.run_due())[0]
    assert (outcome.status, outcome.error) == ("failed", "RuntimeError('down')")
    listed = (await job_list(client, operator))["test.flaky"]
    assert listed["consecutive_failures"] == 1
    clock.advance(9.9)
    assert await jobs.run_due() == []
    clock.advance(0.1)  # retry 1 after 10 s
    assert [o.status for o in await jobs.run_due()] == ["failed"]
    clock.advance(19.9)
    assert await jobs.run_due() == []
    clock.advance(0.1)  # retry 2 after 20 s
    assert [o.status for o in await jobs.run_due()] == ["failed"]
    clock.advance(30)  # 40 s, but never later than the interval
    assert [o.result for o in await jobs.run_due()] == [{"ok": True}]
    runs = await job_runs(client, operator, "test.flaky")
    assert [(r["attempt"], r["status"]) for r in reversed(runs)] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "succeeded"),
    ]
    assert runs[-1]["error"] == "RuntimeError('down')"
    assert (await job_list(client, operator))["test.flaky"]["consecutive_failures"] == 0


async def test_run_past_its_timeout_is_cut_and_counted_failed(jobs_app, operator, clock):
    client = await jobs_app()

    async def hangs(context):
        await asyncio.sleep(60)

    jobs = runner(client, [Job("test.hangs", MINUTE, hangs)], clock, timeout=0.05)
    (outcome,) = await jobs.run_due()
    assert outcome.status == "failed"
    assert outcome.error == "Cut after 0.05 s."
    assert (await job_list(client, operator))["test.hangs"]["last_run"]["status"] == "failed"


async def test_claim_of_a_dead_runner_comes_back_after_its_lease(jobs_app, operator, clock, pgsql):
    client = await jobs_app()
    ran: list[str] = []

    async def work(context):
        ran.append(context.name)

    job = Job("test.leased", MINUTE, work)
    dead = runner(client, [job], clock, worker="dead")
    alive = runner(client, [job], clock, worker="alive")
    await dead.register()
    async with client.app[DATABASE].transaction() as conn:
        # The dead runner's claim: it never records an outcome.
        (claim,) = await JobRepository(conn).claim(
            ["test.leased"], now=clock(), lease=MINUTE, limit=1, worker="dead"
        )
    listed = (await job_list(client, operator))["test.leased"]
    assert listed["leased_by"] == "dead"
    assert listed["lease_until"] is not None
    assert await alive.run_due() == []
    clock.advance(59)
    assert await alive.run_due() == []
    clock.advance(1)
    assert [o.status for o in await alive.run_due()] == ["succeeded"]
    assert ran == ["test.leased"]
    # The dead runner's late outcome changes nothing and says so.
    assert (await dead._record(claim, job, clock(), 5, {}, None)).status == "superseded"
    runs = await job_runs(client, operator, "test.leased")
    assert [(r["worker"], r["status"]) for r in reversed(runs)] == [
        ("alive", "succeeded"),
        ("dead", "superseded"),
    ]
    assert (await job_list(client, operator))["test.leased"]["leased_by"] is None


async def test_lease_is_renewed_while_a_long_run_goes_on(jobs_app, operator, clock):
    client = await jobs_app()
    release = asyncio.Event()

    async def long(context):
        await release.wait()

    lease = timedelta(seconds=0.15)
    jobs = runner(client, [Job("test.long", MINUTE, long)], clock, lease=lease)
    await jobs.register()
    running = asyncio.create_task(jobs.run_due())

    async def leased():
        return (await job_list(client, operator))["test.long"]["lease_until"]

    first = await eventually(leased, what="the claim")
    clock.advance(1)

    async def renewed():
        return await leased() > first  # a renewal comes every lease / 3 of real time

    await eventually(renewed, what="a renewal of the lease")
    release.set()
    assert [o.status for o in await running] == ["succeeded"]
