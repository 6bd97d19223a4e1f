"""A service module (`python -m …`) as a real process for a test or a bench: its settings as
environment variables, one log across restarts, started, killed (SIGKILL), paused (SIGSTOP) and
stopped (SIGTERM)."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    def __init__(self, module: str, env_prefix: str, log: Path, settings: dict[str, Any]) -> None:
        self.module = module
        self.log = log
        self.env = {
            **os.environ,
            **{f"{env_prefix}{name.upper()}": str(value) for name, value in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def spawn(self) -> None:
        """Starts the process without waiting for it."""
        assert not self.alive
        self._mark("start")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_answering(self, url: str, within: float = 30.0) -> None:
        """Until `url` answers 200; fails when the process exits first or time runs out."""
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while time.monotonic() < deadline:
                assert self.alive, f"{self.module} exited at start:\n{self.log_tail()}"
                try:
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"no answer from {self.module} in {within} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, whatever was in flight is cut."""
        assert self.process is not None
        assert self.alive
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._mark("SIGKILL")

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def terminate(self) -> int | None:
        """SIGTERM (after SIGCONT, should it be paused), SIGKILL if it is not gone within 15 s;
        its exit code (None if it never started)."""
        if self.process is None:
            return None
        if self.alive:
            self.resume()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    async def stop(self) -> int | None:
        return await asyncio.to_thread(self.terminate)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(no log)"

    def _mark(self, what: str) -> None:
        with self.log.open("ab") as log:
            log.write(f"--- {what} {datetime.now(UTC).isoformat()}\n".encode())
