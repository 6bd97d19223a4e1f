"""`python -m experiment_service.workers` serves GET /metrics when its METRICS_PORT is given: the
jobs it runs are counted there."""

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.experiment.dispatcher_process import DispatcherProcess
from tests.experiment.test_jobs_processes import JOBS, PROCESS_SETTINGS
from tests.plugins.waiting import eventually


async def job_runs_scraped(url: str) -> dict[tuple[str, str], float]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.labels["job_name"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "etp_job_runs_total"
    }


async def test_workers_process_counts_its_job_runs(
    pgsql, database_url, mockserver_host, get_free_port, tmp_path
):
    port = get_free_port()
    process = DispatcherProcess(
        database_url("experiment"),
        mockserver_host,
        tmp_path / "workers.log",
        **PROCESS_SETTINGS,
        metrics_port=port,
    )
    process.spawn()
    try:

        async def every_job_ran() -> dict[tuple[str, str], float]:
            assert process.process is not None
            assert process.process.poll() is None, process.log_text()
            try:
                runs = await job_runs_scraped(f"http://127.0.0.1:{port}/metrics")
            except aiohttp.ClientConnectionError:
                return {}
            return runs if all(runs.get((job, "succeeded")) for job in JOBS) else {}

        runs = await eventually(every_job_ran, within=20, what="every job to run once")
        assert {job: runs[(job, "succeeded")] for job in JOBS} == dict.fromkeys(JOBS, 1.0)
        assert all(runs[(job, "failed")] == 0 for job in JOBS)
    finally:
        code = await process.stop()
        print(process.log_text()[-3000:])
    assert code == 0
