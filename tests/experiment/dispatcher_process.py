"""`python -m experiment_service.workers` as a real process for a test: started with the test
database and short timings, killed (SIGKILL), paused (SIGSTOP) and resumed, its log kept."""

from pathlib import Path
from typing import Any

from tests.plugins.service_process import ServiceProcess
from tests.plugins.waiting import eventually


class DispatcherProcess(ServiceProcess):
    def __init__(self, database_url: str, allowed_host: str, log: Path, **settings: Any) -> None:
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
        super().__init__("experiment_service.workers", "EXPERIMENT_", log, values)

    async def start(self, within: float = 20.0) -> None:
        """Starts it and waits until it listens for new deliveries."""
        self.spawn()

        def listening() -> bool:
            assert self.alive, f"the dispatcher exited:\n{self.log_text()}"
            return "listening" in self.log_text()

        await eventually(
            listening, within=within, interval=0.05, what=f"the dispatcher to start ({self.log})"
        )

    def count(self, text: str) -> int:
        return self.log_text().count(text)
