"""The job `telemetry.deleted_sensors_purge` (docs/jobs.md): the readings, batches, rollup
minutes and ingest errors of sensors deleted with their project go in chunks, a transaction
each, so a crash loses at most a chunk and the next run goes on. A sensor is marked done only
once all of it is gone. The sensor's tokens went when the deletion was recorded, so nothing new
arrives for it (but a batch acknowledged from the spool before: the next deletion of the same
sensor is not asked for, see docs/operations.md)."""

from collections.abc import Mapping
from datetime import datetime

from backend_common.db import Database
from telemetry_ingest_service.repositories.deletions import KINDS, SensorDeletionRepository

CHUNK = 10_000
_TAKE = 100


class SensorDeletions:
    def __init__(self, db: Database, *, chunk: int = CHUNK) -> None:
        self._db = db
        self._chunk = chunk

    async def purge(self, now: datetime) -> Mapping[str, int]:
        counts = {"sensors": 0, **{kind: 0 for kind in KINDS}}
        while True:
            async with self._db.connection() as conn:
                sensor_ids = await SensorDeletionRepository(conn).pending(_TAKE)
            for sensor_id in sensor_ids:
                for kind in KINDS:
                    while True:
                        async with self._db.transaction() as conn:
                            count = await SensorDeletionRepository(conn).delete_chunk(
                                kind, sensor_id, limit=self._chunk
                            )
                        counts[kind] += count
                        if count < self._chunk:
                            break
                async with self._db.transaction() as conn:
                    await SensorDeletionRepository(conn).done(sensor_id, now=now)
                counts["sensors"] += 1
            if len(sensor_ids) < _TAKE:
                return counts
