"""Backfills: the stored readings of a conversion profile published for a past start, recomputed
(docs/telemetry.md, "Backfill").

The experiment service records a backfill with the profile's publication (domain
conversion_profiles); the telemetry job converts the readings in chunks and marks it finished;
the job here then announces it: its audit row and `capture.backfill.finished` to the sensor's
home project.
"""

import uuid
from datetime import datetime

from backend_common.clock import Clock
from backend_common.db import Database
from backend_common.rbac import Caller, Role
from experiment_service.domain import changes
from experiment_service.domain.errors import BackfillNotFound, SensorNotFound
from experiment_service.domain.models import Backfill, BackfillProgress, BackfillStatus
from experiment_service.domain.sensors import sensor_access
from experiment_service.domain.webhooks.outbox import Event
from experiment_service.repositories.backfills import BackfillRepository
from experiment_service.repositories.sensors import SensorRepository

FINISHED = "capture.backfill.finished"
ENTITY = "conversion_backfill"
ANNOUNCE_JOB = "conversion_backfills.announce"


def progress(backfill: Backfill) -> BackfillProgress:
    """Readings per second from its start to its last chunk, and the seconds still to go at
    that rate."""
    seconds = (backfill.updated_at - backfill.started_at).total_seconds()
    rate = backfill.rows_done / seconds if backfill.rows_done and seconds > 0 else None
    eta = None
    if rate and backfill.status == BackfillStatus.RUNNING:
        eta = max(backfill.rows_total - backfill.rows_done, 0) / rate
    return BackfillProgress(**backfill.model_dump(), rate=rate, eta_seconds=eta)


class Backfills:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, caller: Caller, backfill_id: uuid.UUID) -> BackfillProgress:
        """For a viewer of one of the sensor's projects; BackfillNotFound for anyone else."""
        async with self._db.connection() as conn:
            found = await BackfillRepository(conn).get(backfill_id)
        if found is None:
            raise BackfillNotFound()
        try:
            await sensor_access(self._db, caller, found.sensor_id, Role.VIEWER)
        except SensorNotFound:
            raise BackfillNotFound() from None
        return progress(found)

    async def announce_finished(self, now: datetime, *, job: str, limit: int = 100) -> int:
        """The audit row and webhook event of each backfill the telemetry job finished."""
        async with self._db.transaction() as conn:
            backfills = BackfillRepository(conn)
            finished = await backfills.lock_unannounced(limit)
            for backfill in finished:
                found = await SensorRepository(conn).projects_of(backfill.sensor_id)
                if found is not None:
                    shown = progress(backfill)
                    await changes.record(
                        conn,
                        caller=None,
                        role=None,
                        action="conversion_backfill.finished",
                        entity_type=ENTITY,
                        entry=changes.Entry(backfill.id, after=changes.snapshot(shown)),
                        project_id=found[0],
                        parent_id=backfill.sensor_id,
                        events=[Event(FINISHED, shown, backfill.finished_at)],
                        request_id=f"job:{job}",
                    )
                await backfills.mark_announced(backfill.id, now)
        return len(finished)
