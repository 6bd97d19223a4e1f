#!/usr/bin/env python3
"""Telemetry queries over a big table: a one-day 1-minute aggregate and a 10,000-row history
page of one sensor, with many millions of readings stored.

Start the stack first (`make run`), then:

    .venv/bin/python bench/query.py [--readings 50000000] [--sensors 50] [--requests 200]

It creates a user, a project and `--sensors` sensors through the API, loads `--readings`
readings straight into telemetry_records with COPY on several connections (one reading a second
per sensor, going back from now), queues their minutes for the rollup hour by hour and waits
for the service's refresher to roll them up (what it made is kept in .local/bench-query.json,
and `--reuse` measures again on it without loading), then asks the
telemetry service, `--requests` times each, for one sensor's 1-minute aggregate over a day and
for a 10,000-reading history page at a random point of that sensor's range, and prints p50/p99.
"""

import argparse
import asyncio
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
from common import expect, login, percentile, setup

COLUMNS = (
    "batch_id", "seq", "sensor_id", "timestamp", "received_at", "raw_value", "physical_value",
    "conversion_status", "late",
)  # fmt: skip
ROWS_PER_COPY = 50_000
# Loaded rows carry this batch id: far beyond any the batches table gives out, and positive as
# every stored batch id is (history cursors refuse others).
LOAD_BATCH_ID = 2**62
STATE = Path(__file__).resolve().parents[1] / ".local" / "bench-query.json"


async def create_sensors(session, experiment: str, headers: dict, project_id: str, count: int):
    sensors = []
    for n in range(count):
        sensors.append(
            await expect(
                await session.post(
                    f"{experiment}/api/v1/sensors",
                    json={
                        "project_id": project_id,
                        "name": f"query bench {n}",
                        "type": "bench",
                        "input_unit": "mV",
                        "display_unit": "K",
                    },
                    headers=headers,
                ),
                201,
            )
        )
    return sensors


async def load(dsn: str, sensor_ids: list[uuid.UUID], readings: int, end: datetime) -> float:
    """COPY `readings` rows, one a second per sensor back from `end`; returns rows/s."""
    per_sensor = readings // len(sensor_ids)
    queue: asyncio.Queue[tuple[uuid.UUID, int] | None] = asyncio.Queue()
    for sensor_id in sensor_ids:
        for offset in range(0, per_sensor, ROWS_PER_COPY):
            queue.put_nowait((sensor_id, offset))

    async def worker() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            while not queue.empty():
                sensor_id, offset = queue.get_nowait()
                count = min(ROWS_PER_COPY, per_sensor - offset)
                start = end - timedelta(seconds=per_sensor - offset)
                rows = [
                    (LOAD_BATCH_ID, offset + i, sensor_id, start + timedelta(seconds=i), end,
                     float(i % 1000), (i % 1000) * 0.5, "ok", False)
                    for i in range(count)
                ]  # fmt: skip
                await conn.copy_records_to_table("telemetry_records", records=rows, columns=COLUMNS)
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(4)))
    return per_sensor * len(sensor_ids) / (time.perf_counter() - started)


async def roll_up(dsn: str, sensor_ids: list[uuid.UUID], start: datetime, end: datetime) -> float:
    """Queues the loaded minutes (rows written past the batches queue nothing themselves), an
    hour per entry, and waits until the service's refresher has taken them; returns seconds."""
    hours = int((end - start) / timedelta(hours=1)) + 1
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO telemetry_rollup_pending (sensor_id, first_minute, last_minute)"
            " SELECT $1, telemetry_minute($2),"
            "        telemetry_minute(least($2 + interval '59 minutes', $3))",
            [(s, start + timedelta(hours=h), end) for s in sensor_ids for h in range(hours)],
        )
        started = time.perf_counter()
        queued = "SELECT count(*) FROM telemetry_rollup_pending"
        while True:
            if not await conn.fetchval(queued):
                return time.perf_counter() - started
            await asyncio.sleep(1)
    finally:
        await conn.close()


async def timed(session, url: str, params: dict, headers: dict) -> float:
    started = time.perf_counter()
    async with session.get(url, params=params, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise SystemExit(f"{url} -> {response.status}: {await response.text()}")
    return (time.perf_counter() - started) * 1000


async def prepare(session, args: argparse.Namespace) -> tuple[dict, list[uuid.UUID], dict]:
    """Auth headers, sensor ids and what was loaded (a new load, or the one kept)."""
    if args.reuse:
        state = json.loads(STATE.read_text())
        headers = await login(session, args.auth, state["username"])
        return headers, [uuid.UUID(s) for s in state["sensor_ids"]], state
    headers, project_id, _ = await setup(session, args.auth, args.experiment)
    sensors = await create_sensors(session, args.experiment, headers, project_id, args.sensors)
    sensor_ids = [uuid.UUID(s["id"]) for s in sensors]
    end = datetime.now(UTC).replace(microsecond=0)
    print(f"loading {args.readings:,} readings for {args.sensors} sensors …", flush=True)
    rate = await load(args.dsn, sensor_ids, args.readings, end)
    conn = await asyncpg.connect(args.dsn)
    await conn.execute("ANALYZE telemetry_records")
    await conn.close()
    print(f"loaded at {rate:,.0f} rows/s; rolling up …", flush=True)
    start = end - timedelta(seconds=args.readings // args.sensors)
    seconds = await roll_up(args.dsn, sensor_ids, start, end)
    print(f"rolled up in {seconds:,.0f} s ({args.readings / seconds:,.0f} readings/s)")
    me = await expect(await session.get(f"{args.auth}/api/v1/auth/me", headers=headers), 200)
    state = {
        "username": me["username"],
        "sensor_ids": [str(s) for s in sensor_ids],
        "end": end.isoformat(),
        "per_sensor": args.readings // args.sensors,
    }
    STATE.write_text(json.dumps(state))
    return headers, sensor_ids, state


async def main(args: argparse.Namespace) -> None:
    async with aiohttp.ClientSession() as session:
        headers, sensor_ids, state = await prepare(session, args)
        conn = await asyncpg.connect(args.dsn)
        total = await conn.fetchval("SELECT count(*) FROM telemetry_records")
        await conn.close()
        print(f"telemetry_records holds {total:,} rows")
        end = datetime.fromisoformat(state["end"])
        span = timedelta(seconds=state["per_sensor"])
        rng = random.Random(3)
        aggregate, history = [], []
        for _ in range(args.requests):
            sensor = str(rng.choice(sensor_ids))
            day_start = end - span + (span - timedelta(days=1)) * rng.random()
            aggregate.append(
                await timed(
                    session,
                    f"{args.telemetry}/api/v1/telemetry/aggregate",
                    {
                        "sensor_id": sensor,
                        "from": day_start.isoformat(),
                        "to": (day_start + timedelta(days=1)).isoformat(),
                        "bucket": "1m",
                    },
                    headers,
                )
            )
            history.append(
                await timed(
                    session,
                    f"{args.telemetry}/api/v1/telemetry",
                    {"sensor_id": sensor, "from": day_start.isoformat(), "limit": "10000"},
                    headers,
                )
            )
    for name, samples in (
        ("1-minute aggregate over one day, one sensor", aggregate),
        ("history page of 10,000 readings", history),
    ):
        print(
            f"{name:<45} p50 {percentile(samples, 0.5):6.1f} ms   "
            f"p99 {percentile(samples, 0.99):6.1f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--auth", default="http://127.0.0.1:8001")
    parser.add_argument("--experiment", default="http://127.0.0.1:8002")
    parser.add_argument("--telemetry", default="http://127.0.0.1:8003")
    parser.add_argument("--dsn", default="postgresql://etp@127.0.0.1:55432/experiment")
    parser.add_argument("--readings", type=int, default=50_000_000)
    parser.add_argument("--sensors", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="measure on the last load again")
    asyncio.run(main(parser.parse_args()))
