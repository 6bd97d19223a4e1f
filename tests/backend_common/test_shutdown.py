import asyncio
import signal
import sys
import time

import aiohttp
import orjson
import pytest

from backend_common.paths import PROJECT_ROOT

START_TIMEOUT = 10.0
EXIT_TIMEOUT = 5.0


class SlowService:
    """tests/backend_common/slow_app.py as a real process, with its JSON log lines."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.events: list[dict] = []

    async def wait_event(self, name: str) -> dict:
        while True:
            line = await self.process.stdout.readline()
            assert line, f"process ended before logging {name!r}: {self.events}"
            try:
                self.events.append(orjson.loads(line))
            except orjson.JSONDecodeError:  # a traceback on stderr, say
                self.events.append({"event": None, "text": line.decode(errors="replace")})
            if self.events[-1]["event"] == name:
                return self.events[-1]

    async def wait_healthy(self) -> None:
        async with aiohttp.ClientSession() as session, asyncio.timeout(START_TIMEOUT):
            while True:
                assert self.process.returncode is None, "process exited during start-up"
                try:
                    async with session.get(f"{self.url}/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)

    async def wait_refusing(self) -> None:
        # Another process: there is nothing to await but the port itself.
        while await self.accepts_connections():  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    async def accepts_connections(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except ConnectionError:  # refused, or reset when caught in the closing listener's backlog
            return False
        writer.close()
        await writer.wait_closed()
        return True


@pytest.fixture
async def slow_service(get_free_port):
    port = get_free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.backend_common.slow_app",
        str(port),
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    yield SlowService(process, port)
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_sigterm_finishes_in_flight_request_and_exits_zero(slow_service):
    await slow_service.wait_healthy()
    async with aiohttp.ClientSession() as session:
        slow = asyncio.create_task(session.post(f"{slow_service.url}/slow"))
        async with asyncio.timeout(START_TIMEOUT):
            await slow_service.wait_event("slow_request_started")

        slow_service.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        async with asyncio.timeout(1.0):
            await slow_service.wait_refusing()
        refused_while_draining = not slow.done()
        response = await slow

        assert refused_while_draining
        assert response.status == 200
        assert await response.json() == {"slept": 1.5}
        response.release()

    returncode = await asyncio.wait_for(slow_service.process.wait(), EXIT_TIMEOUT)
    exit_seconds = time.monotonic() - signalled
    async with asyncio.timeout(1.0):
        await slow_service.wait_event("stopped")

    assert returncode == 0
    assert exit_seconds < EXIT_TIMEOUT
    assert not await slow_service.accepts_connections()
