"""Upkeep of the readings' storage: partitions for the coming months (on plain PostgreSQL) and
the retention setting applied (whole partitions or chunks dropped)."""

from datetime import timedelta

from backend_common.db import Database
from telemetry_ingest_service.repositories.telemetry import TelemetryRepository

# Monthly telemetry partitions are kept this far ahead (on plain PostgreSQL).
PARTITION_MONTHS_AHEAD = 4


class Storage:
    def __init__(self, db: Database, *, retention: timedelta | None) -> None:
        self._db = db
        self._retention = retention

    async def maintain(self) -> None:
        """Partitions for the coming months, then the retention (None keeps everything)."""
        async with self._db.transaction() as conn:
            await TelemetryRepository(conn).ensure_partitions(PARTITION_MONTHS_AHEAD)
        async with self._db.transaction() as conn:
            await TelemetryRepository(conn).apply_retention(self._retention)
