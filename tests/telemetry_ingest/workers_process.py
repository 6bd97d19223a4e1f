"""`python -m telemetry_ingest_service.workers` as a real process for a test: started with the
test database and the settings given, killed (SIGKILL), its log kept."""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class TelemetryWorkers:
    def __init__(self, database_url: str, log: Path, **settings: Any) -> None:
        self.log = log
        values = {
            "database_url": database_url,
            "log_level": "info",
            "log_format": "console",
            **settings,
        }
        self.env = {
            **os.environ,
            **{f"TELEMETRY_INGEST_{name.upper()}": str(value) for name, value in values.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "telemetry_ingest_service.workers"],
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM; its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
