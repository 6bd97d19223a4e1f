"""`python -m telemetry_ingest_service.workers` as a real process for a test: started with the
test database and the settings given, killed (SIGKILL), its log kept."""

from pathlib import Path
from typing import Any

from tests.plugins.service_process import ServiceProcess


class TelemetryWorkers(ServiceProcess):
    def __init__(self, database_url: str, log: Path, **settings: Any) -> None:
        values = {
            "database_url": database_url,
            "log_level": "info",
            "log_format": "console",
            **settings,
        }
        super().__init__("telemetry_ingest_service.workers", "TELEMETRY_INGEST_", log, values)
