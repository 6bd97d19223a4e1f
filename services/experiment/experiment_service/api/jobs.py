"""The background jobs, for operators (docs/jobs.md)."""

from typing import Any

from aiohttp import web

from backend_common.http import parse_query
from backend_common.pagination import PageQuery
from backend_common.rbac import caller
from backend_common.repositories.jobs import JobRun, JobState
from experiment_service.api.listing import page_response
from experiment_service.appkeys import JOBS

routes = web.RouteTableDef()


def job_run_out(run: JobRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": run.job,
        "worker": run.worker,
        "attempt": run.attempt,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "status": run.status,
        "error": run.error,
        "result": run.result,
    }


def job_out(job: JobState) -> dict[str, Any]:
    return {
        "name": job.name,
        "service": job.service,
        "description": job.description,
        "interval_seconds": job.interval_seconds,
        "next_run_at": job.next_run_at,
        "consecutive_failures": job.failures,
        "leased_by": job.leased_by,
        "lease_until": job.lease_until,
        "last_run": None if job.last_run is None else job_run_out(job.last_run),
    }


@routes.get("/api/v1/jobs", name="list_jobs")
async def list_jobs(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    page = await request.app[JOBS].list_page(caller(request), query.page)
    return page_response(page.map(job_out))


@routes.get("/api/v1/jobs/{name}/runs", name="list_job_runs")
async def list_job_runs(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    page = await request.app[JOBS].runs(caller(request), request.match_info["name"], query.page)
    return page_response(page.map(job_run_out))
