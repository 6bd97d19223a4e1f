#!/usr/bin/env python3
"""Live stream delivery: many SSE clients on a few sensors while ingest runs.

Start the stack first (`make run`), then:

    .venv/bin/python bench/stream.py [--sensors 10] [--clients 100] [--rate 20000] [--duration 15]

It registers a throwaway user and project, creates `--sensors` sensors through the API, opens
`--clients` live streams (one per new viewer of the project, spread evenly over the sensors) on
the telemetry service, and ingests
`--rate` readings a second in batches of 1,000 (each sensor in turn). For every event a client
receives it takes the time from the batch's `received_at` (the server's clock when ingest got
it; same machine) to the event's arrival, and prints the p50/p99 of that delivery time.
"""

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
from common import expect, percentile, setup

BATCH = 1000
PASSWORD = "bench password"


async def create_sensor(session, experiment: str, headers: dict, project_id: str, n: int) -> dict:
    return await expect(
        await session.post(
            f"{experiment}/api/v1/sensors",
            json={
                "project_id": project_id,
                "name": f"stream bench {n}",
                "type": "bench",
                "input_unit": "mV",
                "display_unit": "K",
                "conversion_profile": {
                    "version": "v1",
                    "kind": "linear",
                    "payload": {"a": 0.5, "b": -3.0},
                },
            },
            headers=headers,
        ),
        201,
    )


async def viewers(session, auth: str, owner: dict, project_id: str, count: int) -> list[dict]:
    """Auth headers of `count` new users, each a viewer of the project (streams are per user)."""
    users = []
    for _ in range(count):
        name = f"viewer{uuid.uuid4().hex[:8]}"
        await expect(
            await session.post(
                f"{auth}/api/v1/auth/register",
                json={"username": name, "email": f"{name}@bench.local", "password": PASSWORD},
            ),
            201,
        )
        tokens = await expect(
            await session.post(
                f"{auth}/api/v1/auth/login", json={"username": name, "password": PASSWORD}
            ),
            200,
        )
        await expect(
            await session.post(
                f"{auth}/api/v1/projects/{project_id}/members",
                json={"username": name, "role": "viewer"},
                headers=owner,
            ),
            201,
        )
        users.append({"Authorization": f"Bearer {tokens['access_token']}"})
    return users


async def listen(
    session, url: str, headers: dict, sensor_id: str, delays: list[float], ready: asyncio.Event
) -> None:
    async with session.get(
        url, params={"sensor_id": sensor_id}, headers=headers, timeout=aiohttp.ClientTimeout()
    ) as response:
        ready.set()
        async for line in response.content:
            if line.startswith(b"data: "):
                arrived = datetime.now(UTC)
                event = orjson.loads(line[6:])
                received_at = datetime.fromisoformat(event["readings"][0]["received_at"])
                delays.append((arrived - received_at).total_seconds())


async def ingest(session, url: str, sensors: list[dict], rate: float, duration: float) -> int:
    interval = BATCH / rate
    start = datetime.now(UTC) - timedelta(minutes=5)
    readings = [
        {"timestamp": (start + timedelta(milliseconds=i)).isoformat(), "raw_value": i * 0.5}
        for i in range(BATCH)
    ]
    sent, deadline, tick = 0, time.perf_counter() + duration, time.perf_counter()
    in_flight: set[asyncio.Task] = set()

    async def post(sensor: dict) -> None:
        body = {"sensor_id": sensor["id"], "readings": readings}
        headers = {"Authorization": f"Bearer {sensor['token']}"}
        async with session.post(url, json=body, headers=headers) as response:
            await response.read()

    while time.perf_counter() < deadline:
        task = asyncio.create_task(post(sensors[sent % len(sensors)]))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        sent += 1
        tick += interval
        await asyncio.sleep(max(0.0, tick - time.perf_counter()))
    await asyncio.gather(*in_flight)
    return sent * BATCH


async def main(args: argparse.Namespace) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        headers, project_id, _ = await setup(session, args.auth, args.experiment)
        sensors = [
            await create_sensor(session, args.experiment, headers, project_id, n)
            for n in range(args.sensors)
        ]
        users = await viewers(session, args.auth, headers, project_id, args.clients)
        delays: list[float] = []
        ready = [asyncio.Event() for _ in range(args.clients)]
        stream_url = f"{args.telemetry}/api/v1/telemetry/stream"
        listeners = [
            asyncio.create_task(
                listen(
                    session, stream_url, users[n], sensors[n % len(sensors)]["id"], delays, ready[n]
                )
            )
            for n in range(args.clients)
        ]
        await asyncio.gather(*(event.wait() for event in ready))
        print(
            f"{args.clients} live streams on {args.sensors} sensors; ingesting "
            f"{args.rate:,.0f} readings/s in batches of {BATCH} for {args.duration:.0f} s"
        )
        points = await ingest(
            session, f"{args.telemetry}/api/v1/telemetry", sensors, args.rate, args.duration
        )
        await asyncio.sleep(1.0)
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    ms = [d * 1000 for d in delays]
    expected = points // BATCH * args.clients // args.sensors
    print(
        f"ingested {points:,} readings; {len(ms):,} events delivered of {expected:,} expected\n"
        f"ingest → client delivery: p50 {percentile(ms, 0.5):.1f} ms, "
        f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms, default=float('nan')):.1f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--auth", default="http://127.0.0.1:8001")
    parser.add_argument("--experiment", default="http://127.0.0.1:8002")
    parser.add_argument("--telemetry", default="http://127.0.0.1:8003")
    parser.add_argument("--sensors", type=int, default=10)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--duration", type=float, default=15)
    asyncio.run(main(parser.parse_args()))
