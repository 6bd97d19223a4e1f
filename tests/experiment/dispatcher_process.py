"""`python -m experiment_service.workers` as a real process for a test: started with the test
database and short timings, killed (SIGKILL), paused (SIGSTOP) and resumed, its log kept."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.plugins.waiting import eventually

REPO_ROOT = Path(__file__).resolve().parents[2]


class DispatcherProcess:
    def __init__(self, database_url: str, allowed_host: str, log: Path, **settings: Any) -> None:
        self.log = log
        values = {
            "database_url": database_url,
            "webhook_allowed_hosts": allowed_host,
            "webhook_poll_interval": 0.1,
            "webhook_timeout": 1.0,
            "webhook_lease_seconds": 2.0,
            "log_level": "info",
            "log_format": "console",
            **settings,
        }
        self.env = {
            **os.environ,
            **{f"EXPERIMENT_{name.upper()}": str(value) for name, value in values.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def spawn(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "experiment_service.workers"],
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self, within: float = 20.0) -> None:
        """Starts it and waits until it listens for new deliveries."""
        self.spawn()
        process = self.process
        assert process is not None

        def listening() -> bool:
            assert process.poll() is None, f"the dispatcher exited:\n{self.log_text()}"
            return "listening" in self.log_text()

        await eventually(
            listening, within=within, interval=0.05, what=f"the dispatcher to start ({self.log})"
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    async def stop(self) -> int | None:
        """SIGTERM (after SIGCONT, should it be paused); its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.resume()
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def count(self, text: str) -> int:
        return self.log_text().count(text)
