#!/usr/bin/env python3
"""Run metrics: logging throughput beside an MLflow tracking server, and chart queries over a
million-point metric, in one run.

Start the stack first (`make run`), install the bench extra (`pip install -e '.[dev,bench]'`,
which brings `mlflow`), then:

    .venv/bin/python bench/metrics.py [--clients 8] [--batch 1000] [--duration 10]

It starts `mlflow server` (its default 4 workers) on a database `mlflow` that it creates in the
same PostgreSQL as the stack, then measures for `--duration` seconds each, alternating
`--rounds` times:
  1. ETP: POST /api/v1/runs/{id}/metrics, one closed-loop client per run, batches of `--batch`
     points (each a new batch_id; a step per point, as training code logs them);
  2. MLflow: POST /api/2.0/mlflow/runs/log-batch with the same points (1,000 metrics a request
     is MLflow's own limit), one client per MLflow run;
and prints points/s with p50/p99 per batch and ETP's figure as a multiple of MLflow's. Then it
logs `--chart-points` points of one metric into a run (10,000 a request) and asks `--queries`
times each for a chart (`points=1000`) of the whole series and of a random 10,000-step window,
and prints p50/p99. The machine (2 cores) runs the stack, PostgreSQL, MLflow and this load
generator together: the figures are for comparing, side by side, not absolute.
"""

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import asyncpg
import orjson
from common import expect, percentile, setup, wait_up

NAMES = ("train/loss", "train/acc", "lr", "grad_norm")


class EtpBatches:
    """Request bodies for one run: `size` points of four metrics, steps going on from batch to
    batch (as training code logs them), each body a new batch id."""

    def __init__(self, size: int) -> None:
        self.size, self.base = size, 0

    def body(self) -> bytes:
        metrics = [
            {"name": NAMES[i % 4], "value": 1.0 / (i + 1), "step": self.base + i // 4}
            for i in range(self.size)
        ]
        self.base += self.size // 4
        return orjson.dumps({"batch_id": uuid.uuid4().hex, "metrics": metrics})


class MlflowBatches:
    """The same points as MLflow's log-batch takes them (timestamps in milliseconds)."""

    def __init__(self, run_id: str, size: int) -> None:
        self.run_id, self.size, self.base = run_id, size, 0
        self.now = int(time.time() * 1000)

    def body(self) -> bytes:
        metrics = [
            {"key": NAMES[i % 4], "value": 1.0 / (i + 1), "timestamp": self.now,
             "step": self.base + i // 4}
            for i in range(self.size)
        ]  # fmt: skip
        self.base += self.size // 4
        return orjson.dumps({"run_id": self.run_id, "metrics": metrics})


async def drive(
    session: aiohttp.ClientSession,
    targets: list[tuple[str, dict, object]],
    *,
    duration: float,
    ok: int,
    size: int,
) -> tuple[float, list[float], int]:
    """One closed-loop client per (url, headers, bodies); points/s, latencies, errors."""
    latencies: list[float] = []
    errors = points = 0
    deadline = time.perf_counter() + duration

    async def client(url: str, headers: dict, bodies) -> None:
        nonlocal errors, points
        while time.perf_counter() < deadline:
            body = bodies.body()
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != ok:
                        errors += 1
                        continue
            except aiohttp.ServerDisconnectedError:
                # A keep-alive connection the server closed while it sat idle: send again.
                continue
            latencies.append(time.perf_counter() - started)
            points += size

    started = time.perf_counter()
    await asyncio.gather(*(client(*target) for target in targets))
    return points / (time.perf_counter() - started), latencies, errors


def report(name: str, rate: float, latencies: list[float], errors: int) -> None:
    ms = [x * 1000 for x in latencies]
    print(
        f"{name:<40} {rate:>10,.0f} points/s   p50 {percentile(ms, 0.5):7.1f} ms"
        f"   p99 {percentile(ms, 0.99):7.1f} ms   errors {errors}",
        flush=True,
    )


async def etp_runs(session, args, headers: dict, experiment_id: str, count: int) -> list[str]:
    runs = []
    for n in range(count):
        run = await expect(
            await session.post(
                f"{args.experiment}/api/v1/experiments/{experiment_id}/runs",
                json={"name": f"bench run {n}"},
                headers=headers,
            ),
            201,
        )
        await expect(
            await session.patch(
                f"{args.experiment}/api/v1/runs/{run['id']}",
                json={"status": "running"},
                headers=headers,
            ),
            200,
        )
        runs.append(run["id"])
    return runs


async def mlflow_runs(session, url: str, count: int) -> list[str]:
    api = f"{url}/api/2.0/mlflow"
    created = await expect(
        await session.post(
            f"{api}/experiments/create", json={"name": f"bench {uuid.uuid4().hex[:8]}"}
        ),
        200,
    )
    runs = []
    for _ in range(count):
        run = await expect(
            await session.post(
                f"{api}/runs/create",
                json={"experiment_id": created["experiment_id"], "start_time": 0},
            ),
            200,
        )
        runs.append(run["run"]["info"]["run_id"])
    return runs


async def ensure_database(dsn: str, name: str) -> str:
    """The DSN of database `name` in the same PostgreSQL, created if missing."""
    base, _, _ = dsn.rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{base}/{name}"


def start_mlflow(args: argparse.Namespace, dsn: str, workdir: str) -> subprocess.Popen:
    """`mlflow server` with its defaults (4 workers), in a process group of its own; its
    background job runners (scoring of GenAI traces, nothing to do with tracking) are off."""
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    store = dsn.replace("postgresql://", "postgresql+psycopg2://")
    return subprocess.Popen(
        [mlflow, "server", "--backend-store-uri", store, "--host", "127.0.0.1",
         "--port", str(args.mlflow_port), "--artifacts-destination", f"{workdir}/artifacts"],
        cwd=workdir,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=open(f"{workdir}/mlflow.log", "w"),
        start_new_session=True,
    )  # fmt: skip


def stop_mlflow(mlflow: subprocess.Popen) -> None:
    """Stops the server and every process it started (its process group)."""
    try:
        os.killpg(mlflow.pid, signal.SIGTERM)
        mlflow.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(mlflow.pid, signal.SIGKILL)
        mlflow.wait()
    except ProcessLookupError:
        pass


async def charts(session, args, headers: dict, experiment_id: str) -> None:
    (run_id,) = await etp_runs(session, args, headers, experiment_id, 1)
    url = f"{args.experiment}/api/v1/runs/{run_id}/metrics"
    rng = random.Random(1)
    started = time.perf_counter()
    for start in range(0, args.chart_points, 10_000):
        metrics = [
            {"name": "loss", "value": rng.gauss(1.0 / (1 + step / 1e5), 0.05), "step": step}
            for step in range(start, min(start + 10_000, args.chart_points))
        ]
        await expect(await session.post(url, json={"metrics": metrics}, headers=headers), 201)
    loading = time.perf_counter() - started
    print(
        f"\nloaded {args.chart_points:,} points of one metric in {loading:.1f} s"
        f" ({args.chart_points / loading:,.0f} points/s, 10,000 a request)",
        flush=True,
    )
    for label, window in (("whole series", None), ("10,000-step window", 10_000)):
        samples, sizes = [], []
        for _ in range(args.queries):
            params = {"points": "1000"}
            if window:
                low = rng.randrange(0, args.chart_points - window)
                params.update(step_from=str(low), step_to=str(low + window))
            began = time.perf_counter()
            async with session.get(f"{url}/loss", params=params, headers=headers) as response:
                body = await expect(response, 200)
            samples.append((time.perf_counter() - began) * 1000)
            sizes.append(len(body["items"]))
        print(
            f"chart points=1000, {label:<20} p50 {percentile(samples, 0.5):6.1f} ms"
            f"   p99 {percentile(samples, 0.99):6.1f} ms   ({min(sizes)}-{max(sizes)} points)",
            flush=True,
        )


async def main(args: argparse.Namespace) -> None:
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()}", flush=True)
    mlflow_dsn = await ensure_database(args.dsn, "mlflow")
    workdir = tempfile.mkdtemp(prefix="etp-bench-mlflow-")
    mlflow_url = f"http://127.0.0.1:{args.mlflow_port}"
    mlflow = start_mlflow(args, mlflow_dsn, workdir)
    connector = aiohttp.TCPConnector(limit=args.clients * 4)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(900):  # a loaded box takes its time
                try:
                    async with session.get(f"{mlflow_url}/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise SystemExit(f"mlflow server did not come up; see {workdir}/mlflow.log")
            await wait_up(session, f"{args.experiment}/health")
            headers, _, experiment_id = await setup(session, args.auth, args.experiment)
            headers = {**headers, "Content-Type": "application/json"}
            etp = await etp_runs(session, args, headers, experiment_id, args.clients)
            mlf = await mlflow_runs(session, mlflow_url, args.clients)
            etp_targets = [
                (f"{args.experiment}/api/v1/runs/{run_id}/metrics", headers, EtpBatches(args.batch))
                for run_id in etp
            ]
            mlflow_targets = [
                (
                    f"{mlflow_url}/api/2.0/mlflow/runs/log-batch",
                    {"Content-Type": "application/json"},
                    MlflowBatches(run_id, args.batch),
                )
                for run_id in mlf
            ]
            print(
                f"{args.clients} clients (one run each), batches of {args.batch} points,"
                f" {args.duration:.0f} s each, {args.rounds} rounds\n",
                flush=True,
            )
            ratios = []
            for _ in range(args.rounds):
                ours = await drive(
                    session, etp_targets, duration=args.duration, ok=201, size=args.batch
                )
                report("ETP POST /runs/{id}/metrics", *ours)
                theirs = await drive(
                    session, mlflow_targets, duration=args.duration, ok=200, size=args.batch
                )
                report("MLflow runs/log-batch (4 workers)", *theirs)
                ratios.append(ours[0] / theirs[0] if theirs[0] else float("inf"))
            print(f"\nETP / MLflow: {', '.join(f'{r:.1f}x' for r in ratios)}", flush=True)
            await charts(session, args, headers, experiment_id)
    finally:
        stop_mlflow(mlflow)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--auth", default="http://127.0.0.1:8001")
    parser.add_argument("--experiment", default="http://127.0.0.1:8002")
    parser.add_argument("--dsn", default="postgresql://etp@127.0.0.1:55432/experiment")
    parser.add_argument("--mlflow-port", type=int, default=5055)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chart-points", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
