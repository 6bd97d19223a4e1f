"""The real experiment process (`python -m experiment_service`) for fault tests and benches:
started, killed and started again on the same port and artifact folder."""

import os
from pathlib import Path
from typing import Any

from tests.faults.harness import Cluster, free_port
from tests.plugins.service_process import ServiceProcess


class ExperimentProcess(ServiceProcess):
    """`python -m experiment_service` on a fixed port and artifact folder, started, killed and
    started again as the test says; one log across restarts."""

    def __init__(
        self, cluster: Cluster, auth_url: str, artifact_dir: Path, log: Path, **settings: Any
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.artifact_dir = artifact_dir
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
        super().__init__("experiment_service", "EXPERIMENT_", log, values)

    async def start(self, within: float = 30.0) -> None:
        self.spawn()
        await self.wait_answering(f"{self.url}/ready", within)

    def rss_bytes(self) -> int:
        """The process's resident memory now."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        """CPU time the process (all its threads) has used so far, user and system."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def files(self) -> list[Path]:
        return sorted(path for path in self.artifact_dir.rglob("*") if path.is_file())
