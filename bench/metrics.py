#!/usr/bin/env python3
"""Run metrics: logging throughput beside an MLflow tracking server, and chart queries over a
million-point metric, in one run.

Start the stack first (`make run`), install the bench extra (`pip install -e '.[dev,bench]'`,
which brings `mlflow`), then:

    .venv/bin/python bench/metrics.py [--clients 8] [--batch 1000] [--duration 10]

It starts `mlflow server` (bench/mlflow_server.py: its default 4 workers) on a database `mlflow`
that it creates in the same PostgreSQL as the stack, then measures for `--duration` seconds
each, alternating `--rounds` times:
  1. ETP: POST /api/v1/runs/{id}/metrics, one closed-loop client per run, batches of `--batch`
     points (each a new batch_id; a step per point, as training code logs them);
  2. MLflow: POST /api/2.0/mlflow/runs/log-batch with the same points (1,000 metrics a request
     is MLflow's own limit), one client per MLflow run;
and prints points/s with p50/p99 per batch and ETP's figure as a multiple of MLflow's. For the
ceiling, a raw asyncpg COPY of the same rows into `run_metrics` (no HTTP, no checks, no
summaries; records built once) on one and on two connections, also as a multiple of MLflow's
figure. Then it
logs `--chart-points` points of one metric into a run (10,000 a request) and asks `--queries`
times each for a chart (`points=1000`) of the whole series and of a random 10,000-step window,
and prints p50/p99. The machine (2 cores) runs the stack, PostgreSQL, MLflow and this load
generator together: the figures are for comparing, side by side, not absolute.
"""

import argparse
import asyncio
import os
import random
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import asyncpg
import orjson
from common import drive, expect, percentile, report, setup, wait_up
from mlflow_server import log_batch_targets, mlflow_runs, mlflow_server, postgres_store

NAMES = ("train/loss", "train/acc", "lr", "grad_norm")
COLUMNS = ("batch_id", "seq", "run_id", "name", "step", "value", "timestamp", "late")


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


async def raw_copy(dsn: str, *, connections: int, batch: int, duration: float) -> float:
    """COPY of `batch`-row batches of one run's points into run_metrics on `connections`
    connections at once (the records built once, so the client costs least): rows/s."""
    now = datetime.now(UTC)

    async def one(run_id: uuid.UUID) -> float:
        records = [
            (-1, i, run_id, NAMES[i % 4], i // 4, 1.0 / (i + 1), now, False) for i in range(batch)
        ]
        conn = await asyncpg.connect(dsn)
        try:
            rows, started = 0, time.perf_counter()
            while time.perf_counter() < started + duration:
                await conn.copy_records_to_table("run_metrics", records=records, columns=COLUMNS)
                rows += batch
            return rows / (time.perf_counter() - started)
        finally:
            await conn.execute(
                "DELETE FROM run_metrics WHERE batch_id = -1 AND run_id = $1", run_id
            )
            await conn.close()

    return sum(await asyncio.gather(*(one(uuid.uuid4()) for _ in range(connections))))


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
    store = await postgres_store(args.dsn)
    connector = aiohttp.TCPConnector(limit=args.clients * 4)
    async with (
        mlflow_server(store, args.mlflow_port) as mlflow_url,
        aiohttp.ClientSession(connector=connector) as session,
    ):
        await wait_up(session, f"{args.experiment}/health")
        headers, _, experiment_id = await setup(session, args.auth, args.experiment)
        headers = {**headers, "Content-Type": "application/json"}
        etp = await etp_runs(session, args, headers, experiment_id, args.clients)
        etp_targets = [
            (f"{args.experiment}/api/v1/runs/{run_id}/metrics", headers, EtpBatches(args.batch))
            for run_id in etp
        ]
        mlf = await mlflow_runs(session, mlflow_url, args.clients)
        mlflow_targets = log_batch_targets(mlflow_url, mlf, args.batch, NAMES)
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
        mlflow_rate = theirs[0]
        for connections in (1, 2):
            rate = await raw_copy(
                args.dsn, connections=connections, batch=args.batch, duration=args.duration
            )
            print(
                f"{f'raw COPY into run_metrics, {connections} connection(s)':<43}"
                f" {rate:>7,.0f} rows/s   = {rate / mlflow_rate:.1f}x MLflow's last round",
                flush=True,
            )
        await charts(session, args, headers, experiment_id)


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
