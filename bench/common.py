"""What the bench scripts share: a throwaway user, project and experiment on a running stack,
waiting for a server, closed-loop load, percentiles."""

import asyncio
import math
import time
import uuid
from collections.abc import Sequence
from typing import Protocol

import aiohttp


async def expect(response: aiohttp.ClientResponse, status: int) -> dict:
    body = await response.json(content_type=None)
    if response.status != status:
        raise SystemExit(f"{response.method} {response.url} -> {response.status}: {body}")
    return body


PASSWORD = "bench password"


async def login(session: aiohttp.ClientSession, auth: str, username: str) -> dict:
    """Auth headers of a bench user."""
    tokens = await expect(
        await session.post(
            f"{auth}/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        ),
        200,
    )
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def setup(
    session: aiohttp.ClientSession, auth: str, experiment: str
) -> tuple[dict, str, str]:
    """Auth headers of a new user, the id of a project they own and of an experiment in it."""
    name = f"bench{uuid.uuid4().hex[:8]}"
    password = PASSWORD
    await expect(
        await session.post(
            f"{auth}/api/v1/auth/register",
            json={"username": name, "email": f"{name}@bench.local", "password": password},
        ),
        201,
    )
    tokens = await expect(
        await session.post(
            f"{auth}/api/v1/auth/login", json={"username": name, "password": password}
        ),
        200,
    )
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    project = await expect(
        await session.post(f"{auth}/api/v1/projects", json={"name": name}, headers=headers), 201
    )
    created = await expect(
        await session.post(
            f"{experiment}/api/v1/experiments",
            json={"project_id": project["id"], "name": "bench"},
            headers=headers,
        ),
        201,
    )
    return headers, project["id"], created["id"]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else math.nan


async def wait_up(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(100):
        try:
            async with session.get(url) as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


class Bodies(Protocol):
    def body(self) -> bytes: ...


async def drive(
    session: aiohttp.ClientSession,
    targets: Sequence[tuple[str, dict[str, str], Bodies]],
    *,
    duration: float,
    ok: int,
    size: int,
) -> tuple[float, list[float], int]:
    """One closed-loop client per (url, headers, bodies), each request `size` points, for
    `duration` seconds: points/s, latencies of the accepted requests, errors."""
    latencies: list[float] = []
    errors = points = 0
    deadline = time.perf_counter() + duration

    async def client(url: str, headers: dict[str, str], bodies: Bodies) -> None:
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
