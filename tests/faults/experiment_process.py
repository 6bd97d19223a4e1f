"""The real experiment process (`python -m experiment_service`) for fault tests and benches:
started, killed and started again on the same port and artifact folder."""

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

from tests.faults.harness import REPO_ROOT, Cluster, free_port


class ExperimentProcess:
    """`python -m experiment_service` on a fixed port and artifact folder, started, killed and
    started again as the test says; one log across restarts."""

    def __init__(
        self, cluster: Cluster, auth_url: str, artifact_dir: Path, log: Path, **settings: Any
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.artifact_dir = artifact_dir
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        values = {
            "host": "127.0.0.1",
            "port": self.port,
            "database_url": cluster.url(),
            "auth_url": auth_url,
            "role_cache_ttl": 0,
            "webhook_dispatcher_enabled": "false",
            "artifact_dir": artifact_dir,
            "log_level": "info",
            "log_format": "console",
            "shutdown_timeout": 2.0,
            **settings,
        }
        self.env = {
            **os.environ,
            **{f"EXPERIMENT_{name.upper()}": str(value) for name, value in values.items()},
        }

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _spawn(self) -> None:
        with self.log.open("ab") as log:
            log.write(f"--- start {datetime.now(UTC).isoformat()}\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "experiment_service"],
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self, within: float = 30.0) -> None:
        assert not self.alive
        self._spawn()
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while time.monotonic() < deadline:
                assert self.alive, f"the experiment process exited at start:\n{self.tail()}"
                try:
                    async with session.get(f"{self.url}/ready") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"no answer from the experiment process:\n{self.tail()}")

    def kill(self) -> None:
        assert self.process is not None
        assert self.alive
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    async def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def rss_bytes(self) -> int:
        """The process's resident memory now."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        """CPU time the process (all its threads) has used so far, user and system."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def files(self) -> list[Path]:
        return sorted(path for path in self.artifact_dir.rglob("*") if path.is_file())
