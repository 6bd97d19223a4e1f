#!/usr/bin/env python3
"""Create-run and get-run over HTTP against a running stack, beside a bare aiohttp+asyncpg ceiling.

Start the stack first (`make run`), then:

    .venv/bin/python bench/crud.py [--duration 10] [--concurrency 32] [--rate 500]

It registers a throwaway user at the auth service, creates a project, an experiment and some runs
through the API (real tokens, RBAC on), then measures, each for `--duration` seconds:
  1. a bare aiohttp + asyncpg handler doing one primary-key SELECT of a run (the box's ceiling),
  2. GET /api/v1/runs/{id} on the experiment service, closed loop at `--concurrency`,
  3. POST /api/v1/experiments/{id}/runs (audit and idempotency rows included), closed loop,
  4. GET /api/v1/runs/{id} at a fixed `--rate` offered (open loop), for its latency.
and prints requests/s and p50/p99 latency for each.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import asyncpg
from aiohttp import web
from common import expect, percentile, setup, wait_up


class Result:
    def __init__(self, name: str, latencies: list[float], errors: int, elapsed: float) -> None:
        self.name, self.latencies, self.errors, self.elapsed = name, latencies, errors, elapsed

    def line(self) -> str:
        ms = [x * 1000 for x in self.latencies]
        rate = len(ms) / self.elapsed
        return (
            f"{self.name:<34} {rate:>9.0f} req/s   p50 {percentile(ms, 0.5):6.2f} ms"
            f"   p99 {percentile(ms, 0.99):6.2f} ms   errors {self.errors}"
        )


async def closed_loop(
    name: str, call: Callable[[], Awaitable[int]], *, concurrency: int, duration: float
) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status = await call()
            if status >= 400:
                errors += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, latencies, errors, time.perf_counter() - started)


async def open_loop(
    name: str, call: Callable[[], Awaitable[int]], *, rate: float, duration: float
) -> Result:
    """Requests start on a fixed schedule whatever the answers do, so queueing shows in p99."""
    latencies: list[float] = []
    errors = 0
    tasks = []

    async def one(scheduled: float) -> None:
        nonlocal errors
        status = await call()
        if status >= 400:
            errors += 1
        latencies.append(time.perf_counter() - scheduled)

    started = time.perf_counter()
    for i in range(int(rate * duration)):
        scheduled = started + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    return Result(name, latencies, errors, time.perf_counter() - started)


def serve_bare(port: int, dsn: str) -> None:
    """The ceiling: one primary-key SELECT per request, nothing else."""

    async def no_reset(conn: asyncpg.Connection) -> None:
        """As lean as asyncpg goes: no reset round trip per release."""

    async def pool_ctx(app: web.Application):
        app["pool"] = await asyncpg.create_pool(dsn, min_size=4, max_size=10, reset=no_reset)
        yield
        await app["pool"].close()

    async def get_run(request: web.Request) -> web.Response:
        row = await request.app["pool"].fetchrow(
            "SELECT id, name, status FROM runs WHERE id = $1", uuid.UUID(request.match_info["id"])
        )
        return web.json_response({"id": str(row["id"]), "name": row["name"]})

    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_get("/runs/{id}", get_run)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def main(args: argparse.Namespace) -> None:
    connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        headers, _, experiment_id = await setup(session, args.auth_url, args.experiment_url)
        runs_url = f"{args.experiment_url}/api/v1/experiments/{experiment_id}/runs"
        run_ids = [
            (
                await expect(
                    await session.post(runs_url, json={"name": f"seed {i}"}, headers=headers), 201
                )
            )["id"]
            for i in range(100)
        ]
        counter = iter(range(10**9))

        async def status_of(method: str, url: str, **kwargs) -> int:
            async with session.request(method, url, **kwargs) as response:
                await response.read()
                return response.status

        def get_run() -> Awaitable[int]:
            run_id = run_ids[next(counter) % len(run_ids)]
            return status_of("GET", f"{args.experiment_url}/api/v1/runs/{run_id}", headers=headers)

        def create_run() -> Awaitable[int]:
            n = next(counter)
            return status_of(
                "POST",
                runs_url,
                json={"name": f"bench {n}", "params": {"lr": 0.01, "n": n}, "tags": ["bench"]},
                headers={**headers, "Idempotency-Key": f"bench-{uuid.uuid4()}"},
            )

        bare = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
            [
                sys.executable,
                __file__,
                "--serve-bare",
                str(args.bare_port),
                "--database-url",
                args.database_url,
            ]
        )
        try:
            await wait_up(session, f"http://127.0.0.1:{args.bare_port}/runs/{run_ids[0]}")

            def bare_get() -> Awaitable[int]:
                run_id = run_ids[next(counter) % len(run_ids)]
                return status_of("GET", f"http://127.0.0.1:{args.bare_port}/runs/{run_id}")

            results = [
                await closed_loop(
                    "bare aiohttp+asyncpg PK select",
                    bare_get,
                    concurrency=args.concurrency,
                    duration=args.duration,
                )
            ]
        finally:
            bare.terminate()
            bare.wait()
        results.append(
            await closed_loop(
                "get-run", get_run, concurrency=args.concurrency, duration=args.duration
            )
        )
        results.append(
            await closed_loop(
                "create-run", create_run, concurrency=args.concurrency, duration=args.duration
            )
        )
        results.append(
            await open_loop(
                f"get-run at {args.rate:.0f} req/s offered",
                get_run,
                rate=args.rate,
                duration=args.duration,
            )
        )
    print(f"\nconcurrency {args.concurrency}, {args.duration:.0f} s each, {os.cpu_count()} cores")
    for result in results:
        print(result.line())
    ceiling = len(results[0].latencies) / results[0].elapsed
    get_rate = len(results[1].latencies) / results[1].elapsed
    print(f"get-run is {100 * get_rate / ceiling:.0f} % of the bare handler")
    print(f"(get-run mean {statistics.mean(results[1].latencies) * 1000:.2f} ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--auth-url", default="http://127.0.0.1:8001")
    parser.add_argument("--experiment-url", default="http://127.0.0.1:8002")
    parser.add_argument("--database-url", default="postgresql://etp@127.0.0.1:55432/experiment")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--bare-port", type=int, default=8099)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_bare:
        serve_bare(arguments.serve_bare, arguments.database_url)
    else:
        asyncio.run(main(arguments))
