"""What the bench scripts share: a throwaway user, project and experiment on a running stack,
waiting for a server, percentiles."""

import asyncio
import math
import uuid

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
