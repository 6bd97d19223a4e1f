"""Waiting for what happens in the background (a dispatcher, a drain, a refresher)."""

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    probe: Callable[[], Any | Awaitable[Any]],
    *,
    within: float = 10.0,
    interval: float = 0.02,
    what: str = "",
) -> Any:
    """The first truthy result of `probe` (a plain or a coroutine function), polled until
    `within` seconds have passed; past them the test fails saying what it waited for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"still not so after {within} s ({what or probe}): {result!r}")
        await asyncio.sleep(interval)
