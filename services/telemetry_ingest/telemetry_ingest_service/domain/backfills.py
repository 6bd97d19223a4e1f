"""The job `telemetry.conversion_backfill` (docs/telemetry.md, "Backfill"): the stored readings
of a profile published for a past start are converted again, each by the profile valid at its
timestamp, in chunks keyset by ("timestamp", batch_id, seq).

A chunk is one transaction: the backfill's row is locked, the readings after its cursor are
converted and rewritten, their minutes queued for the rollup refresher, and the cursor moved
past them. A process killed mid-way loses at most the chunk it had not committed; the next run
resumes at the cursor, so each reading is rewritten once by the backfill (and converting a
reading again would give the same answer anyway). The chunk that comes back short finishes the
backfill; the experiment service then announces it.
"""

import asyncio
import uuid
from collections.abc import Mapping
from datetime import datetime

from backend_common.clock import Clock
from backend_common.db import Database
from telemetry_ingest_service.domain.conversion import Converters, convert_batch
from telemetry_ingest_service.repositories.backfills import BackfillRepository

JOB = "telemetry.conversion_backfill"
_TAKE = 100


class ConversionBackfills:
    def __init__(
        self, db: Database, clock: Clock, *, chunk: int = 10_000, pause: float = 0.0
    ) -> None:
        self._db = db
        self._clock = clock
        self._chunk = chunk
        self._pause = pause
        self._converters = Converters()

    async def run(self, now: datetime) -> Mapping[str, int]:
        """Every running backfill to its end; how many finished and readings were converted."""
        counts = {"finished": 0, "readings": 0}
        async with self._db.connection() as conn:
            running = await BackfillRepository(conn).running(_TAKE)
        for backfill_id in running:
            while True:
                converted, finished = await self.step(backfill_id)
                counts["readings"] += converted
                if finished:
                    counts["finished"] += 1
                    break
                if self._pause:
                    await asyncio.sleep(self._pause)
        return counts

    async def step(self, backfill_id: uuid.UUID) -> tuple[int, bool]:
        """One chunk of the backfill: the readings converted, and whether it is over."""
        async with self._db.transaction() as conn:
            backfills = BackfillRepository(conn)
            backfill = await backfills.lock(backfill_id)
            if backfill is None:  # finished meanwhile by another runner
                return 0, True
            chunk = await backfills.chunk(backfill, self._chunk)
            if chunk:
                rows = await backfills.profiles(
                    backfill.sensor_id, chunk.timestamps[0], chunk.timestamps[-1]
                )
                spans = [self._converters.span(*row) for row in rows]
                converted = convert_batch(chunk.timestamps, chunk.raw_values, spans)
                await backfills.rewrite(backfill.sensor_id, chunk, converted)
            finished = len(chunk) < self._chunk
            await backfills.progress(backfill_id, chunk, at=self._clock(), finished=finished)
        return len(chunk), finished
