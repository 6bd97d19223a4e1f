#!/usr/bin/env python3
"""Telemetry ingest throughput: the service beside a bare prototype and a raw COPY, in one run.

Start the stack first (`make run`), then:

    .venv/bin/python bench/ingest.py [--sensors 10] [--batch 1000] [--duration 10]

It creates `--sensors` sensors straight in the experiment database, each with a token, a linear
conversion profile and a run with a running capture session it is bound to (so every feature of
the ingest path is on: token check, rate limit, conversion, attachment, dedup row, NOTIFY), then
measures for `--duration` seconds each:
  1. POST /api/v1/telemetry on the ingest service: one client per sensor, closed loop, batches
     of `--batch` readings (each a fresh batch_id);
  2. the same requests against a bare prototype (orjson → check each reading → one COPY, nothing
     else) served by a process this script starts;
  3. asyncpg COPY of the same rows into telemetry_records on one connection, no HTTP at all;
and prints points/s and p50/p99 batch latency, with the service as a share of the prototype.
"""

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import orjson
from aiohttp import web
from common import percentile, wait_up

from backend_common import sensor_tokens

RECORD_COLUMNS = (
    "batch_id", "seq", "sensor_id", "timestamp", "received_at", "raw_value", "physical_value",
    "conversion_status", "late",
)  # fmt: skip
MLFLOW_LOG_BATCH_METRICS_PER_S = 7_000  # an MLflow tracking server's log-batch on this box


async def create_sensors(conn: asyncpg.Connection, count: int) -> list[tuple[uuid.UUID, str]]:
    """Sensors with a token, a linear profile and a bound run capturing now."""
    project_id, user_id = uuid.uuid4(), uuid.uuid4()
    experiment_id = await conn.fetchval(
        "INSERT INTO experiments (project_id, name, owner_id, status) "
        "VALUES ($1, 'ingest bench', $2, 'running') RETURNING id",
        project_id,
        user_id,
    )
    sensors = []
    for n in range(count):
        run_id = await conn.fetchval(
            "INSERT INTO runs (experiment_id, project_id, name, status, started_at, created_by) "
            "VALUES ($1, $2, $3, 'running', now(), $4) RETURNING id",
            experiment_id,
            project_id,
            f"bench run {n}",
            user_id,
        )
        await conn.execute("UPDATE runs SET last_capture_ordinal = 1 WHERE id = $1; ", run_id)
        await conn.execute(
            "INSERT INTO capture_sessions (run_id, project_id, ordinal_number, status, "
            "started_at) VALUES ($1, $2, 1, 'running', now())",
            run_id,
            project_id,
        )
        sensor_id = await conn.fetchval(
            "INSERT INTO sensors (project_id, name, type, input_unit, display_unit, created_by) "
            "VALUES ($1, $2, 'bench', 'mV', 'K', $3) RETURNING id",
            project_id,
            f"bench sensor {n}",
            user_id,
        )
        await conn.execute(
            "INSERT INTO sensor_projects (sensor_id, project_id, added_by) VALUES ($1, $2, $3)",
            sensor_id,
            project_id,
            user_id,
        )
        token = sensor_tokens.mint(sensor_id)
        await conn.execute(
            "INSERT INTO sensor_tokens (token_hash, sensor_id, preview) VALUES ($1, $2, $3)",
            token.digest,
            sensor_id,
            token.preview,
        )
        await conn.execute(
            "INSERT INTO conversion_profiles (sensor_id, version, kind, payload, valid_from, "
            "created_by) VALUES ($1, 'v1', 'linear', $2, now() - interval '1 day', $3)",
            sensor_id,
            '{"a": 0.5, "b": -3.0}',
            user_id,
        )
        await conn.execute(
            "INSERT INTO run_sensors (run_id, sensor_id, project_id, bound_by) "
            "VALUES ($1, $2, $3, $4)",
            run_id,
            sensor_id,
            project_id,
            user_id,
        )
        sensors.append((sensor_id, token.token))
    return sensors


_PLACEHOLDER = b"B" * 32


class Batches:
    """Request bodies for one sensor: the same `size` readings, each body a new batch_id (the
    load generator shares the cores with the service, so it only swaps the id)."""

    def __init__(self, sensor_id: uuid.UUID, size: int) -> None:
        start = datetime.now(UTC) - timedelta(hours=1)
        self.readings = [
            {"timestamp": (start + timedelta(milliseconds=i)).isoformat(), "raw_value": i * 0.25}
            for i in range(size)
        ]
        self._template = orjson.dumps(
            {
                "sensor_id": str(sensor_id),
                "batch_id": _PLACEHOLDER.decode(),
                "readings": self.readings,
            }
        )

    def body(self) -> bytes:
        return self._template.replace(_PLACEHOLDER, uuid.uuid4().hex.encode())


async def drive(
    session: aiohttp.ClientSession,
    url: str,
    sensors: list[tuple[uuid.UUID, str]],
    *,
    batch: int,
    duration: float,
) -> tuple[float, list[float], int]:
    """One closed-loop client per sensor; returns points/s, latencies and errors."""
    latencies: list[float] = []
    errors = 0
    points = 0
    deadline = time.perf_counter() + duration

    async def client(sensor_id: uuid.UUID, token: str) -> None:
        nonlocal errors, points
        bodies = Batches(sensor_id, batch)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while time.perf_counter() < deadline:
            body = bodies.body()
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 202:
                    errors += 1
                    continue
            latencies.append(time.perf_counter() - started)
            points += batch

    started = time.perf_counter()
    await asyncio.gather(*(client(sensor_id, token) for sensor_id, token in sensors))
    return points / (time.perf_counter() - started), latencies, errors


async def raw_copy(dsn: str, sensor_id: uuid.UUID, *, batch: int, duration: float) -> float:
    """COPY of 1,000-row batches into telemetry_records on one connection: points/s."""
    conn = await asyncpg.connect(dsn)
    try:
        readings = Batches(sensor_id, batch).readings
        points, deadline = 0, time.perf_counter() + duration
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            now = datetime.now(UTC)
            rows = [
                (-1, i, sensor_id, datetime.fromisoformat(r["timestamp"]), now, r["raw_value"],
                 r["raw_value"] * 0.5 - 3.0, "ok", False)
                for i, r in enumerate(readings)
            ]  # fmt: skip
            await conn.copy_records_to_table(
                "telemetry_records", records=rows, columns=RECORD_COLUMNS
            )
            points += batch
        return points / (time.perf_counter() - started)
    finally:
        await conn.execute("DELETE FROM telemetry_records WHERE batch_id = -1")
        await conn.close()


def serve_bare(port: int, dsn: str) -> None:
    """The prototype: orjson, a check of each reading, one COPY. No token, no conversion."""

    async def pool_ctx(app: web.Application):
        app["pool"] = await asyncpg.create_pool(dsn, min_size=4, max_size=10)
        yield
        await app["pool"].close()

    async def ingest(request: web.Request) -> web.Response:
        data = orjson.loads(await request.read())
        sensor_id = uuid.UUID(data["sensor_id"])
        now = datetime.now(UTC)
        rows = []
        for seq, reading in enumerate(data["readings"]):
            timestamp = datetime.fromisoformat(reading["timestamp"])
            raw = reading["raw_value"]
            if timestamp.tzinfo is None or not isinstance(raw, int | float):
                raise web.HTTPUnprocessableEntity()
            rows.append((-2, seq, sensor_id, timestamp, now, float(raw), None, "no_profile", False))
        async with request.app["pool"].acquire() as conn:
            await conn.copy_records_to_table(
                "telemetry_records", records=rows, columns=RECORD_COLUMNS
            )
        return web.json_response({"accepted": len(rows)}, status=202)

    app = web.Application(client_max_size=64 << 20)
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/api/v1/telemetry", ingest)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def report(name: str, rate: float, latencies: list[float], errors: int) -> None:
    ms = [x * 1000 for x in latencies]
    print(
        f"{name:<36} {rate:>10,.0f} points/s   p50 {percentile(ms, 0.5):7.1f} ms"
        f"   p99 {percentile(ms, 0.99):7.1f} ms   errors {errors}"
    )


async def main(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(args.dsn)
    try:
        sensors = await create_sensors(conn, args.sensors)
    finally:
        await conn.close()
    bare = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
        [sys.executable, __file__, "--serve-bare", str(args.bare_port), "--dsn", args.dsn]
    )
    try:
        connector = aiohttp.TCPConnector(limit=args.sensors * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            bare_url = f"http://127.0.0.1:{args.bare_port}/api/v1/telemetry"
            await wait_up(session, f"http://127.0.0.1:{args.bare_port}/")
            print(
                f"{args.sensors} sensors, batches of {args.batch} readings, "
                f"{args.duration:.0f} s each\n"
            )
            service = await drive(
                session, args.url, sensors, batch=args.batch, duration=args.duration
            )
            report("ingest service (every feature on)", *service)
            prototype = await drive(
                session, bare_url, sensors, batch=args.batch, duration=args.duration
            )
            report("bare prototype (orjson, check, COPY)", *prototype)
        copy_rate = await raw_copy(
            args.dsn, sensors[0][0], batch=args.batch, duration=args.duration
        )
        print(f"{'raw asyncpg COPY, one connection':<36} {copy_rate:>10,.0f} points/s")
        print(
            f"\nservice / prototype: {service[0] / prototype[0]:.0%}   "
            f"service / MLflow log-batch (~{MLFLOW_LOG_BATCH_METRICS_PER_S:,}/s): "
            f"{service[0] / MLFLOW_LOG_BATCH_METRICS_PER_S:.0f}x"
        )
    finally:
        bare.terminate()
        bare.wait()
        conn = await asyncpg.connect(args.dsn)
        await conn.execute("DELETE FROM telemetry_records WHERE batch_id = -2")
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8003/api/v1/telemetry")
    parser.add_argument("--dsn", default="postgresql://etp@127.0.0.1:55432/experiment")
    parser.add_argument("--sensors", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--bare-port", type=int, default=8093)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_bare:
        serve_bare(arguments.serve_bare, arguments.dsn)
    else:
        asyncio.run(main(arguments))
