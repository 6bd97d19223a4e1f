#!/usr/bin/env python3
"""MLflow's own client logging metrics into ETP (its MLflow door, through the gateway) and into an
MLflow tracking server on the same box, in one run.

Start the stack first (`make run`), install the bench extra (`pip install -e '.[dev,bench]'`,
which brings `mlflow`), then:

    .venv/bin/python bench/mlflow_client.py [--points 100000] [--batch 1000] [--rounds 2]

It starts `mlflow server` as bench/metrics.py does (bench/mlflow_server.py, on a database
`mlflow` in the stack's PostgreSQL), makes a user, a project and an API key bound to it, and
then, alternating `--rounds` times, runs the same training-like script with MLflow's client
(`MlflowClient`): create an experiment and a run, `log_batch` `--points` metric points `--batch`
at a time (1,000 is MLflow's own limit; four metrics, one step per point), end the run. Once with
MLFLOW_TRACKING_URI at ETP's gateway and MLFLOW_TRACKING_TOKEN the key, once at the MLflow server.
It prints points/s of each and ETP's as a multiple of MLflow's. One client, synchronous, as a
training script is; the machine runs everything together: compare side by side, not absolute.
"""

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

import aiohttp
from common import expect, setup, wait_up
from mlflow_server import mlflow_server, postgres_store

NAMES = ("train/loss", "train/acc", "lr", "grad_norm")


def log_points(tracking_uri: str, token: str | None, points: int, batch: int) -> float:
    """Seconds MLflow's client takes to log `points` points into a new run at `tracking_uri`."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment(f"bench {uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id, run_name="bench").info.run_id
    now = int(time.time() * 1000)
    started = time.perf_counter()
    for start in range(0, points, batch):
        metrics = [
            Metric(NAMES[i % len(NAMES)], 1.0 / (1 + i), now + i, i // len(NAMES))
            for i in range(start, min(start + batch, points))
        ]
        client.log_batch(run_id, metrics=metrics)
    client.set_terminated(run_id, "FINISHED")
    return time.perf_counter() - started


async def api_key(session: aiohttp.ClientSession, auth: str, headers: dict, project: str) -> str:
    created = await expect(
        await session.post(
            f"{auth}/api/v1/api-keys",
            json={"name": "bench", "project_id": project, "role": "editor"},
            headers=headers,
        ),
        201,
    )
    return created["key"]


async def main(args: argparse.Namespace) -> None:
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()}", flush=True)
    store = await postgres_store(args.dsn)
    async with mlflow_server(store, args.mlflow_port) as mlflow_url:
        async with aiohttp.ClientSession() as session:
            await wait_up(session, f"{args.gateway}/health")
            headers, project, _ = await setup(session, args.auth, args.experiment)
            key = await api_key(session, args.auth, headers, project)
        print(
            f"MLflow's client, log_batch of {args.batch}, {args.points:,} points a run,"
            f" {args.rounds} rounds\n",
            flush=True,
        )
        ratios = []
        for _ in range(args.rounds):
            ours = await asyncio.to_thread(log_points, args.gateway, key, args.points, args.batch)
            theirs = await asyncio.to_thread(log_points, mlflow_url, None, args.points, args.batch)
            for name, seconds in (("ETP (MLflow door, gateway)", ours), ("MLflow server", theirs)):
                print(
                    f"{name:<28} {seconds:6.2f} s   {args.points / seconds:10,.0f} points/s",
                    flush=True,
                )
            ratios.append(theirs / ours)
        print(f"\nETP / MLflow: {', '.join(f'{r:.1f}x' for r in ratios)}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    parser.add_argument("--auth", default="http://127.0.0.1:8001")
    parser.add_argument("--experiment", default="http://127.0.0.1:8002")
    parser.add_argument("--dsn", default="postgresql://etp@127.0.0.1:55432/experiment")
    parser.add_argument("--mlflow-port", type=int, default=5055)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
