#!/usr/bin/env python3
"""Run comparison through the API of a running stack: 100 runs, each with 20 params, 10 metrics
and 2 bound sensors whose capture session holds telemetry.

Start the stack first (`make run`), then:

    .venv/bin/python bench/compare.py [--runs 100] [--steps 1000] [--readings 1000] [--repeat 50]

It makes a throwaway user, project and experiment, two sensors (linear profiles), and `--runs`
runs through the API, each with 20 params, both sensors bound, one capture session started,
fed `--readings` readings per sensor through telemetry ingest (100 a second from the session's
start) and stopped. Each run gets 10 metrics of `--steps` points through the metrics API
(POST /api/v1/runs/{id}/metrics, 10,000 points a request). Then it asks, `--repeat` times each
and one request at a time, for the comparison of all the runs as JSON and as CSV, and for one
sensor's overlay (`points=1000`), and prints p50/p99 and the answer's size. What it made is kept
in .local/bench-compare.json; `--reuse` measures again on it without making anything.
"""

import argparse
import asyncio
import json
import random
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from common import expect, login, percentile, setup

STATE = Path(__file__).resolve().parents[1] / ".local" / "bench-compare.json"
PARAMS = 20
METRICS = 10


async def post(session: aiohttp.ClientSession, url: str, headers: dict, body: dict) -> dict:
    """A create that must answer 201."""
    async with session.post(url, json=body, headers=headers) as response:
        return await expect(response, 201)


async def make_sensors(session, experiment: str, headers: dict, project_id: str) -> list[dict]:
    sensors = []
    for n in range(2):
        body = {
            "project_id": project_id,
            "name": f"compare bench {n}",
            "type": "bench",
            "input_unit": "mV",
            "display_unit": "K",
            # Valid from well before the sessions, so every reading is converted.
            "conversion_profile": {"version": "v1", "kind": "linear", "payload": {"a": 2.0}},
        }
        sensors.append(await post(session, f"{experiment}/api/v1/sensors", headers, body))
    return sensors


async def make_run(session, args, headers: dict, experiment_id: str, sensors: list[dict], n: int):
    """A run with its params and sensors, one capture session fed and stopped, the run done."""
    api = args.experiment_url
    params = {f"p{k:02d}": (n * k) % 7 / 10 if k % 2 else f"v{(n + k) % 3}" for k in range(PARAMS)}
    run = await post(
        session,
        f"{api}/api/v1/experiments/{experiment_id}/runs",
        headers,
        {"name": f"run {n}", "params": params},
    )
    runs_url = f"{api}/api/v1/runs/{run['id']}"
    for sensor in sensors:
        await post(session, f"{runs_url}/sensors", headers, {"sensor_id": sensor["id"]})
    async with session.patch(runs_url, json={"status": "running"}, headers=headers) as response:
        await expect(response, 200)
    capture = await post(session, f"{runs_url}/capture-sessions", headers, {})
    start = datetime.fromisoformat(capture["started_at"])
    for sensor in sensors:
        readings = [
            {
                "timestamp": (start + timedelta(milliseconds=10 * i)).isoformat(),
                "raw_value": 20 + 5 * random.random() + i / 100,
            }
            for i in range(args.readings)
        ]
        for first in range(0, len(readings), 10_000):
            body = {
                "sensor_id": sensor["id"],
                "run_id": run["id"],
                "capture_session_id": capture["id"],
                "readings": readings[first : first + 10_000],
            }
            async with session.post(
                f"{args.telemetry_url}/api/v1/telemetry",
                json=body,
                headers={"Authorization": f"Bearer {sensor['token']}"},
            ) as response:
                await expect(response, 202)
    async with session.post(
        f"{runs_url}/capture-sessions/{capture['id']}/stop", json={}, headers=headers
    ) as response:
        await expect(response, 200)
    async with session.patch(runs_url, json={"status": "succeeded"}, headers=headers) as response:
        await expect(response, 200)
    return run["id"]


async def log_metrics(session, args, headers: dict, run_id: str) -> None:
    points = [
        {"name": f"metric_{m}", "step": step, "value": random.gauss(1.0 / (step + 1), 0.01)}
        for m in range(METRICS)
        for step in range(args.steps)
    ]
    for first in range(0, len(points), 10_000):
        body = {"metrics": points[first : first + 10_000]}
        await post(session, f"{args.experiment_url}/api/v1/runs/{run_id}/metrics", headers, body)


async def timed(session, url: str, params: list, headers: dict, repeat: int) -> tuple[list, int]:
    samples, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        async with session.get(url, params=params, headers=headers) as response:
            body = await response.read()
            assert response.status == 200, body[:500]
        samples.append(time.perf_counter() - started)
        size = len(body)
    return samples, size


async def prepare(session: aiohttp.ClientSession, args: argparse.Namespace) -> tuple:
    """Auth headers, run ids and sensor ids: made now, or those kept from the last time."""
    if args.reuse:
        state = json.loads(STATE.read_text())
        headers = await login(session, args.auth_url, state["username"])
        return headers, state["run_ids"], state["sensor_ids"]
    headers, project_id, experiment_id = await setup(session, args.auth_url, args.experiment_url)
    started = time.perf_counter()
    sensors = await make_sensors(session, args.experiment_url, headers, project_id)
    run_ids = [
        await make_run(session, args, headers, experiment_id, sensors, n) for n in range(args.runs)
    ]
    for run_id in run_ids:
        await log_metrics(session, args, headers, run_id)
    print(
        f"made {args.runs} runs: {PARAMS} params, {METRICS} metrics of {args.steps} steps,"
        f" 2 sensors with {args.readings} readings each in one capture session,"
        f" in {time.perf_counter() - started:.1f} s"
    )
    async with session.get(f"{args.auth_url}/api/v1/auth/me", headers=headers) as response:
        me = await expect(response, 200)
    sensor_ids = [sensor["id"] for sensor in sensors]
    # The stack works on after a load (the telemetry rollup refresher, autovacuum): not timed.
    print(f"waiting {args.settle:g} s for the stack's background work after the load", flush=True)
    await asyncio.sleep(args.settle)
    STATE.parent.mkdir(exist_ok=True)
    STATE.write_text(
        json.dumps({"username": me["username"], "run_ids": run_ids, "sensor_ids": sensor_ids})
    )
    return headers, run_ids, sensor_ids


async def main(args: argparse.Namespace) -> None:
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        headers, run_ids, sensor_ids = await prepare(session, args)
        ids = [("ids", run_id) for run_id in run_ids]
        compare = f"{args.experiment_url}/api/v1/runs:compare"
        overlay = f"{args.experiment_url}/api/v1/runs:compare/overlay"
        cases = {
            "compare (JSON)": (compare, [*ids, ("baseline", run_ids[-1])]),
            "compare (CSV)": (compare, [*ids, ("format", "csv")]),
            "compare only_diff": (compare, [*ids, ("only_diff", "true")]),
            "overlay points=1000": (overlay, [*ids, ("sensor_id", sensor_ids[0])]),
        }
        print(f"\n{'request':<22} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'bytes':>10}")
        for name, (url, params) in cases.items():
            await timed(session, url, params, headers, 2)  # warm-up
            samples, size = await timed(session, url, params, headers, args.repeat)
            p50, p99 = percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
            print(f"{name:<22} {p50:>8.1f} {p99:>8.1f} {max(samples) * 1000:>8.1f} {size:>10}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--auth-url", default="http://127.0.0.1:8001")
    parser.add_argument("--experiment-url", default="http://127.0.0.1:8002")
    parser.add_argument("--telemetry-url", default="http://127.0.0.1:8003")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000, help="points per metric")
    parser.add_argument("--readings", type=int, default=1000, help="per sensor and session")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--reuse", action="store_true", help="measure on the last runs again")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait after a load")
    asyncio.run(main(parser.parse_args()))
