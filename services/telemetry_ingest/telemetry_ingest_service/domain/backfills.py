"""The job `telemetry.conversion_backfill` (docs/telemetry.md, "Backfill"): the stored readings
of a profile published for a past start are converted again, each by the profile valid at its
timestamp.

A new backfill is first cut by time into slices (about `_CHUNKS_PER_SLICE` chunks each, from its
first to its last reading), each keyset by ("timestamp", batch_id, seq), so that `lanes`
concurrent lanes convert it at once: PostgreSQL's work on a chunk is the bulk of the cost, and a
second lane keeps a second core busy. A lane claims a slice that nobody holds for one chunk, a
transaction: the readings after the slice's cursor are converted and rewritten, their minutes
queued for the rollup refresher, and the cursor moved past them. A process killed mid-way loses
at most the chunks it had not committed; the next run resumes at the cursors, so each reading is
rewritten once by the backfill (and converting a reading again would give the same answer
anyway). The chunk that comes back short finishes its slice, the last slice the backfill; the
experiment service then announces it.
"""

import asyncio
from collections.abc import Mapping
from datetime import datetime

from backend_common.clock import Clock
from backend_common.db import Database
from telemetry_ingest_service.domain.conversion import Converters, convert_batch
from telemetry_ingest_service.repositories.backfills import BackfillRepository
from telemetry_ingest_service.repositories.telemetry import TelemetryRepository

JOB = "telemetry.conversion_backfill"
_TAKE = 100
_CHUNKS_PER_SLICE = 10
_MAX_SLICES = 100


class ConversionBackfills:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        chunk: int = 10_000,
        lanes: int = 2,
        pause: float = 0.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self._chunk = chunk
        self._lanes = lanes
        self._pause = pause
        self._converters = Converters()

    async def run(self, now: datetime) -> Mapping[str, int]:
        """Every running backfill to its end; how many finished and readings were converted."""
        await self.cut_new()
        lanes = await asyncio.gather(*(self._lane() for _ in range(self._lanes)))
        return {
            "finished": sum(finished for finished, _ in lanes),
            "readings": sum(readings for _, readings in lanes),
        }

    async def cut_new(self) -> None:
        """Slices for the backfills that have none yet."""
        async with self._db.connection() as conn:
            backfills = BackfillRepository(conn)
            for backfill in await backfills.unsliced(_TAKE):
                first, last = await backfills.extent(backfill)
                pieces = -(-backfill.rows_total // (self._chunk * _CHUNKS_PER_SLICE))
                await backfills.cut(backfill.id, slice_bounds(first, last, pieces))

    async def _lane(self) -> tuple[int, int]:
        """Chunks until no slice is left to claim: the backfills finished, readings converted."""
        finished = readings = 0
        while (step := await self.step()) is not None:
            readings += step[0]
            finished += step[1]
            if self._pause:
                await asyncio.sleep(self._pause)
        return finished, readings

    async def step(self) -> tuple[int, bool] | None:
        """One chunk of a free slice: the readings converted, and whether that finished its
        backfill; None when no slice is left to claim."""
        async with self._db.transaction() as conn:
            backfills = BackfillRepository(conn)
            piece = await backfills.claim()
            if piece is None:
                return None
            await TelemetryRepository(conn).share_timeline(piece.sensor_id)
            chunk = await backfills.chunk(piece, self._chunk)
            if chunk:
                rows = await backfills.profiles(
                    piece.sensor_id, chunk.timestamps[0], chunk.timestamps[-1]
                )
                spans = [self._converters.span(*row) for row in rows]
                converted = convert_batch(chunk.timestamps, chunk.raw_values, spans)
                await backfills.rewrite(piece.sensor_id, chunk, converted)
            ended = await backfills.progress(
                piece, chunk, at=self._clock(), finished=len(chunk) < self._chunk
            )
        return len(chunk), ended


def slice_bounds(first: datetime | None, last: datetime | None, pieces: int) -> list[datetime]:
    """Where to cut [first, last] into `pieces` (at most `_MAX_SLICES`) equal spans of time."""
    pieces = min(pieces, _MAX_SLICES)
    if first is None or last is None or pieces < 2 or last == first:
        return []
    width = (last - first) / pieces
    return sorted({first + width * n for n in range(1, pieces)} - {first})
