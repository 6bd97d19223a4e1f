#!/usr/bin/env python3
"""The sensor simulator's throughput (`etp simulate`'s engine), from one process.

Start the stack first (`make run`), then:

    .venv/bin/python bench/simulator.py [--url http://127.0.0.1:8000] [--sensors 20]
        [--rate 1000] [--batch-size 1000] [--duration 10]

It signs up a bench user (project, API key), creates `--sensors` sensors through the API (each
with a linear profile, bound to a running run with a running capture session, so the ingest path
does everything), and measures for `--duration` seconds each:
  1. real time: every sensor measuring `--rate` readings a second, sent once measured — does the
     simulator keep up with sensors x rate (points/s accepted, the longest a batch waited);
  2. flat out: a start an hour in the past, sent as fast as the service answers (the stack's
     ceiling with the simulator as its only client);
  3. flat out against a sink (a process that answers 202 without storing): the simulator's own
     ceiling.
For each: points/s accepted, and the simulator's CPU time per point (its process alone).
`--ingest-url http://127.0.0.1:8003` sends readings straight to the ingest service.
"""

import argparse
import asyncio
import os
import sys
import time
import uuid

from aiohttp import web

from etp.client import Client
from etp.simulator.engine import Simulator
from etp.simulator.plan import SensorPlan
from etp.simulator.provision import (
    bind_sensors,
    create_sensors,
    linear_profile,
    start_capture,
    stop_capture,
)
from etp.simulator.waveforms import Shape

PASSWORD = "bench password 1"


def setup(url: str, sensors: int) -> tuple[Client, str, str, list[SensorPlan]]:
    with Client(url, None) as anonymous:
        name = f"simbench{uuid.uuid4().hex[:8]}"
        anonymous.post(
            "/api/v1/auth/register",
            {"username": name, "email": f"{name}@bench.local", "password": PASSWORD},
        )
        tokens = anonymous.post("/api/v1/auth/login", {"username": name, "password": PASSWORD})
    with Client(url, tokens["access_token"]) as signed_in:
        key = signed_in.post("/api/v1/api-keys", {"name": "simulator bench"})["key"]
    api = Client(url, key)
    project = api.post("/api/v1/projects", {"name": name})
    experiment = api.post("/api/v1/experiments", {"project_id": project["id"], "name": "bench"})
    run = api.post(f"/api/v1/experiments/{experiment['id']}/runs", {"name": "simulator bench"})
    api.patch(f"/api/v1/runs/{run['id']}", {"status": "running"})
    made = create_sensors(
        api, project["id"], [f"bench-{n}" for n in range(sensors)], profile=linear_profile(2, 1)
    )
    bind_sensors(api, run["id"], [sensor.id for sensor in made])
    session_id = start_capture(api, run["id"], notes="simulator bench")
    plans = [SensorPlan(s.id, s.token, s.name, Shape("sine", noise=0.01)) for s in made]
    return api, run["id"], str(session_id), plans


async def measure(
    label: str, url: str, plans: list[SensorPlan], *, rate: float, batch: int,
    seconds: float, backlog: bool,
) -> None:  # fmt: skip
    paced = [SensorPlan(p.sensor_id, p.token, p.name, p.shape, rate, batch) for p in plans]
    start = time.time() - 3600 if backlog else None
    simulator = Simulator(url, paced, start=start, duration=None if backlog else seconds)
    if backlog:
        asyncio.get_running_loop().call_later(seconds, simulator.stop, "duration")
    cpu = time.process_time()
    summary = await simulator.run()
    cpu = time.process_time() - cpu
    stats = summary.stats
    per_point = 1e6 * cpu / max(stats.points_sent, 1)
    lag = "" if backlog else f", longest wait {stats.send_lag_max * 1000:,.0f} ms"
    lost = stats.points_rejected + stats.points_failed
    print(
        f"{label:<34} {summary.points_per_second:>10,.0f} points/s accepted "
        f"({stats.points_accepted:,} in {summary.seconds:.1f} s{lag}; {stats.retried} retries, "
        f"{lost} lost); simulator CPU {per_point:.1f} µs/point",
        flush=True,
    )


async def sink(request: web.Request) -> web.Response:
    body = await request.read()
    accepted = body.count(b'"timestamp"')
    return web.json_response({"accepted": accepted, "late": 0, "duplicate": False}, status=202)


def serve_sink(port: int) -> None:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/api/v1/telemetry", sink)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


async def main(args: argparse.Namespace) -> None:
    api, run_id, session_id, plans = setup(args.url, args.sensors)
    ingest = args.ingest_url or args.url
    target = args.sensors * args.rate
    print(
        f"{args.sensors} sensors, batches of {args.batch_size}, {args.duration:g} s each "
        f"(cores: {os.cpu_count()}; the stack shares them)",
        flush=True,
    )
    try:
        await measure(
            f"real time, target {target:,.0f}/s", ingest, plans, rate=args.rate,
            batch=args.batch_size, seconds=args.duration, backlog=False,
        )  # fmt: skip
        await measure(
            "flat out, the stack", ingest, plans, rate=args.rate, batch=args.batch_size,
            seconds=args.duration, backlog=True,
        )  # fmt: skip
    finally:
        stop_capture(api, run_id, session_id)
        api.close()
    sink_process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-sink", str(args.sink_port)
    )
    try:
        await asyncio.sleep(1.0)
        await measure(
            "flat out, a sink (no storage)", f"http://127.0.0.1:{args.sink_port}", plans,
            rate=args.rate, batch=args.batch_size, seconds=args.duration, backlog=True,
        )  # fmt: skip
    finally:
        sink_process.terminate()
        await sink_process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("ETP_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--ingest-url")
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--sink-port", type=int, default=8094)
    parser.add_argument("--serve-sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_sink:
        serve_sink(arguments.serve_sink)
    else:
        asyncio.run(main(arguments))
