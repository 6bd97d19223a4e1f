#!/usr/bin/env python3
"""Telemetry ingest throughput: the service beside a bare prototype, a raw COPY and an MLflow
tracking server, in one run.

Start the stack first (`make run`), install the bench extra (`pip install -e '.[dev,bench]'`,
which brings `mlflow`), then:

    .venv/bin/python bench/ingest.py [--sensors 10] [--batch 1000] [--duration 10]

It creates `--sensors` sensors straight in the experiment database, each with a token, a linear
conversion profile and a run with a running capture session it is bound to (so every feature of
the ingest path is on: token check, rate limit, conversion, attachment, dedup row, NOTIFY), then
measures for `--duration` seconds each:
  1. POST /api/v1/telemetry on the ingest service: one client per sensor, closed loop, batches
     of `--batch` readings (each a fresh batch_id) of a live 10 kHz timeline (`--replay`: the
     same readings of an hour ago every time, the rollup refresher's worst case);
  2. the same requests against a bare prototype (orjson → check each reading → one COPY, nothing
     else) served by a process this script starts;
  3. asyncpg COPY of the same rows into telemetry_records on one connection, no HTTP at all;
  4. MLflow's POST /api/2.0/mlflow/runs/log-batch, `--batch` metrics a request (its own limit),
     one closed-loop client per MLflow run, `mlflow server` (its default 4 workers) started and
     stopped by this script (bench/mlflow_server.py), once on a SQLite store and once on a
     database in the stack's PostgreSQL (`--mlflow-stores`);
and prints points/s and p50/p99 batch latency, the service as a share of the prototype and as a
multiple of MLflow. For the service and the prototype it also prints the CPU seconds their
processes and PostgreSQL (every backend) spent per million points; for the service, PostgreSQL's
also after the load until the rollup's queue is empty again (the refresher recomputes a minute
once it is over by the grace, 10 s by default), and how long that took.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import cpu
import orjson
from aiohttp import web
from common import drive, report, wait_up
from mlflow_server import log_batch_targets, mlflow_runs, mlflow_server, postgres_store

from backend_common import sensor_tokens

RECORD_COLUMNS = (
    "batch_id", "seq", "sensor_id", "timestamp", "received_at", "raw_value", "physical_value",
    "conversion_status", "late",
)  # fmt: skip


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


_BATCH_ID = b"B" * 32
_TENTHS = b"T" * 21  # "YYYY-MM-DDTHH:MM:SS.d": where a batch's 100 ms lie
SPACING = timedelta(microseconds=100)  # a 10 kHz sensor


class Batches:
    """Request bodies for one sensor, `size` readings each, every body a new batch_id. Live (the
    default): a 10 kHz sensor from a second ago on, each batch the next `size` readings, so a
    1,000-reading batch is the next 100 ms. Replay: the same readings of an hour ago every time
    (late batches that queue the same minutes again and again: the rollup refresher's worst
    case). The load generator shares the cores with the service: a body is a template with
    the batch id (and where the batch lies in time) swapped in."""

    def __init__(self, sensor_id: uuid.UUID, size: int, *, replay: bool = False) -> None:
        self._replay, self._size = replay, size
        now = datetime.now(UTC)
        if replay:
            start = now - timedelta(hours=1)
            stamps = [(start + i * SPACING).isoformat() for i in range(size)]
        else:
            assert size * SPACING <= timedelta(milliseconds=100), "a batch spans 100 ms at most"
            self._next = now.replace(microsecond=now.microsecond // 100_000 * 100_000)
            self._next -= timedelta(seconds=1)
            stamps = [f"{_TENTHS.decode()}{i * 100:05d}+00:00" for i in range(size)]
        self._template = orjson.dumps(
            {
                "sensor_id": str(sensor_id),
                "batch_id": _BATCH_ID.decode(),
                "readings": [
                    {"timestamp": stamp, "raw_value": i * 0.25} for i, stamp in enumerate(stamps)
                ],
            }
        )

    def body(self) -> bytes:
        body = self._template.replace(_BATCH_ID, uuid.uuid4().hex.encode())
        if self._replay:
            return body
        at, self._next = self._next, self._next + timedelta(milliseconds=100)
        tenths = f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 100_000}".encode()
        return body.replace(_TENTHS, tenths)


async def raw_copy(dsn: str, sensor_id: uuid.UUID, *, batch: int, duration: float) -> float:
    """COPY of 1,000-row batches into telemetry_records on one connection: points/s."""
    conn = await asyncpg.connect(dsn)
    try:
        start = datetime.now(UTC) - timedelta(hours=1)
        stamps = [start + i * SPACING for i in range(batch)]
        points, deadline = 0, time.perf_counter() + duration
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            now = datetime.now(UTC)
            rows = [
                (-1, i, sensor_id, stamp, now, i * 0.25, i * 0.25 * 0.5 - 3.0, "ok", False)
                for i, stamp in enumerate(stamps)
            ]
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


async def rollup_drained(conn: asyncpg.Connection, within: float = 120.0) -> float:
    """Waits until the rollup's queue is empty: seconds it took (the refresher's tail)."""
    started = time.perf_counter()
    while await conn.fetchval("SELECT count(*) FROM telemetry_rollup_pending"):
        if time.perf_counter() - started > within:
            print(f"the rollup queue is still not empty after {within:.0f} s")
            break
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


def ingest_targets(
    url: str, sensors: list[tuple[uuid.UUID, str]], batch: int, replay: bool
) -> list:
    """One (url, headers, bodies) per sensor, for `common.drive`."""
    return [
        (
            url,
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            Batches(sensor_id, batch, replay=replay),
        )
        for sensor_id, token in sensors
    ]


async def measured(
    session: aiohttp.ClientSession, targets: list, args: argparse.Namespace, trees: list
) -> tuple[tuple[float, list[float], int], tuple[float, float, float, float]]:
    """`drive` with the ingest's requests, and the CPU seconds per million points that the two
    process trees (server, PostgreSQL) spent on it; then PostgreSQL's total so far and the
    factor from seconds to seconds per million points, to count what it does afterwards."""
    before = [cpu.tree_seconds(roots) for roots in trees]
    result = await drive(session, targets, duration=args.duration, ok=202, size=args.batch)
    after = [cpu.tree_seconds(roots) for roots in trees]
    per_million = 1e6 / (result[0] * args.duration) if result[0] else 0.0
    server, postgres = ((a - b) * per_million for a, b in zip(after, before, strict=True))
    return result, (server, postgres, after[1], per_million)


async def main(args: argparse.Namespace) -> None:
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()}", flush=True)
    conn = await asyncpg.connect(args.dsn)
    try:
        sensors = await create_sensors(conn, args.sensors)
        postgres = cpu.postmaster(await conn.fetchval("SHOW data_directory"))
    finally:
        await conn.close()
    service_roots = cpu.matching(args.service_process)
    if not service_roots:
        raise SystemExit(f"no process runs {args.service_process!r}: is the stack up?")
    bare = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
        [sys.executable, __file__, "--serve-bare", str(args.bare_port), "--dsn", args.dsn]
    )
    try:
        connector = aiohttp.TCPConnector(limit=args.sensors * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            bare_url = f"http://127.0.0.1:{args.bare_port}/api/v1/telemetry"
            await wait_up(session, f"http://127.0.0.1:{args.bare_port}/")
            print(
                f"{args.sensors} sensors, batches of {args.batch} readings"
                f" ({'replayed, an hour late' if args.replay else 'live, 10 kHz'}),"
                f" {args.duration:.0f} s each\n",
                flush=True,
            )
            service, spent = await measured(
                session, ingest_targets(args.url, sensors, args.batch, args.replay), args,
                [service_roots, [postgres]],
            )  # fmt: skip
            report("ingest service (every feature on)", *service)
            conn = await asyncpg.connect(args.dsn)
            try:
                tail = await rollup_drained(conn)
            finally:
                await conn.close()
            later = cpu.tree_seconds([postgres]) - spent[2]
            print(
                f"{'':<40} CPU s per million points: service {spent[0]:.1f}, PostgreSQL"
                f" {spent[1]:.1f} during the load + {later * spent[3]:.1f} after it"
                f" (rollup queue empty {tail:.0f} s after)",
                flush=True,
            )
            prototype, spent = await measured(
                session, ingest_targets(bare_url, sensors, args.batch, args.replay), args,
                [[bare.pid], [postgres]],
            )  # fmt: skip
            report("bare prototype (orjson, check, COPY)", *prototype)
            print(
                f"{'':<40} CPU s per million points: prototype {spent[0]:.1f},"
                f" PostgreSQL {spent[1]:.1f}",
                flush=True,
            )
            copy_rate = await raw_copy(
                args.dsn, sensors[0][0], batch=args.batch, duration=args.duration
            )
            print(f"{'raw asyncpg COPY, one connection':<40} {copy_rate:>10,.0f} points/s")
            mlflow = {}
            for store in filter(None, args.mlflow_stores.split(",")):
                uri = await postgres_store(args.dsn) if store == "postgresql" else None
                async with mlflow_server(uri, args.mlflow_port) as mlflow_url:
                    runs = await mlflow_runs(session, mlflow_url, args.sensors)
                    mlflow[store] = await drive(
                        session,
                        log_batch_targets(mlflow_url, runs, args.batch, ("value",)),
                        duration=args.duration,
                        ok=200,
                        size=args.batch,
                    )
                report(f"MLflow runs/log-batch ({store} store)", *mlflow[store])
        ratios = "   ".join(
            f"service / MLflow ({store}): {service[0] / rate:.1f}x"
            for store, (rate, _, _) in mlflow.items()
        )
        print(f"\nservice / prototype: {service[0] / prototype[0]:.0%}   {ratios}", flush=True)
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
    parser.add_argument(
        "--replay",
        action="store_true",
        help="send the same readings of an hour ago every time (late batches into the same "
        "minutes) instead of a live 10 kHz timeline",
    )
    parser.add_argument("--bare-port", type=int, default=8093)
    parser.add_argument("--mlflow-port", type=int, default=5056)
    parser.add_argument(
        "--mlflow-stores",
        default="sqlite,postgresql",
        help="MLflow's stores to measure, comma-separated: sqlite (a file of its own),"
        " postgresql (a database `mlflow` in the stack's PostgreSQL)",
    )
    parser.add_argument(
        "--service-process",
        default="telemetry_ingest_service",
        help="what the ingest service's command line contains (its CPU time is measured)",
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_bare:
        serve_bare(arguments.serve_bare, arguments.dsn)
    else:
        asyncio.run(main(arguments))
