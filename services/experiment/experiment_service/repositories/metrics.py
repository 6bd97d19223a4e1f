"""SQL of logging run metrics: a batch row (once per client batch id, with a NOTIFY for live
streams), one COPY of its points, and one statement that merges what the batch adds into the
run's summaries and tiles (no scan of stored points)."""

import itertools
import uuid
from datetime import datetime
from typing import Annotated

import asyncpg
from pydantic import Field

from backend_common.batches import Same, copy_columns, insert_batch_sql
from backend_common.pagination import CursorKey, Page, PageRequest
from experiment_service.domain.metric_batch import MAX_NAME_LENGTH, MetricBatch, Summary, Tile
from experiment_service.domain.metric_models import MetricSummary, StoredBatch

NOTIFY_CHANNEL = "run_metrics"

_INSERT_BATCH = insert_batch_sql(
    "run_metric_batches",
    ("run_id", "client_batch_id", "points", "late", "received_at", "logged_by"),
    pointer={"run": "$1::text"},
)
_STORED_BATCH = """
    SELECT points, late FROM run_metric_batches WHERE run_id = $1 AND client_batch_id = $2
"""
# Serialises, per run, the batches whose points take the next step of their name, so that two
# of them never hand out the same steps (the lock is held until the transaction ends, so the
# second reads the steps the first committed).
_LOCK_STEPS = "SELECT pg_advisory_xact_lock(hashtextextended('run_metrics:' || $1, 0))"
_HIGHEST_STEPS = """
    SELECT name, last_step FROM run_metric_summaries WHERE run_id = $1 AND name = ANY($2::text[])
"""
# A sum of finite values that no double can hold becomes ±Infinity (PostgreSQL would refuse
# the addition); halves never overflow.
_SUM = """
    CASE WHEN s.sum IS NULL THEN excluded.sum
         WHEN excluded.sum IS NULL THEN s.sum
         WHEN abs(s.sum / 2 + excluded.sum / 2) < 8.9e307 THEN s.sum + excluded.sum
         ELSE sign(s.sum / 2 + excluded.sum / 2) * 'Infinity'::float8 END
"""
_NEWER = """
    (excluded.last_step > s.last_step
     OR (excluded.last_step = s.last_step AND excluded.last_timestamp >= s.last_timestamp))
"""
_LOWER = "(t.min IS NULL OR excluded.min < t.min)"
_HIGHER = "(t.max IS NULL OR excluded.max > t.max)"
# Both merges in one round trip; rows come sorted (by name, width, tile), so concurrent batches
# of a run lock them in one order.
_MERGE = f"""
    WITH summaries AS (
        INSERT INTO run_metric_summaries AS s (run_id, name, count, finite_count, min, max, sum,
                                               last, last_step, last_timestamp)
        SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::float8[],
                                 $6::float8[], $7::float8[], $8::float8[], $9::bigint[],
                                 $10::timestamptz[])
        ON CONFLICT (run_id, name) DO UPDATE SET
            count = s.count + excluded.count,
            finite_count = s.finite_count + excluded.finite_count,
            min = least(s.min, excluded.min),
            max = greatest(s.max, excluded.max),
            sum = {_SUM},
            last = CASE WHEN {_NEWER} THEN excluded.last ELSE s.last END,
            last_step = CASE WHEN {_NEWER} THEN excluded.last_step ELSE s.last_step END,
            last_timestamp = CASE WHEN {_NEWER} THEN excluded.last_timestamp
                                  ELSE s.last_timestamp END,
            updated_at = now()
    ), tiles AS (
        INSERT INTO run_metric_tiles AS t (run_id, name, width, tile, first, first_step, last,
                                           last_step, min, min_step, max, max_step)
        SELECT $1, * FROM unnest($11::text[], $12::int[], $13::bigint[], $14::float8[],
                                 $15::bigint[], $16::float8[], $17::bigint[], $18::float8[],
                                 $19::bigint[], $20::float8[], $21::bigint[])
        ON CONFLICT (run_id, name, width, tile) DO UPDATE SET
            first = CASE WHEN excluded.first_step < t.first_step THEN excluded.first
                         ELSE t.first END,
            first_step = least(t.first_step, excluded.first_step),
            last = CASE WHEN excluded.last_step >= t.last_step THEN excluded.last ELSE t.last END,
            last_step = greatest(t.last_step, excluded.last_step),
            min = CASE WHEN {_LOWER} THEN excluded.min ELSE t.min END,
            min_step = CASE WHEN {_LOWER} THEN excluded.min_step ELSE t.min_step END,
            max = CASE WHEN {_HIGHER} THEN excluded.max ELSE t.max END,
            max_step = CASE WHEN {_HIGHER} THEN excluded.max_step ELSE t.max_step END
    )
    SELECT 1
"""
_SUMMARY_COLUMNS = """
    name, count, finite_count, min, max,
    CASE WHEN finite_count > 0 THEN sum / finite_count END AS avg,
    last, last_step, last_timestamp
"""
_SUMMARIES = f"""
    SELECT {_SUMMARY_COLUMNS} FROM run_metric_summaries
    WHERE run_id = $1 AND name > coalesce($2, '') ORDER BY name LIMIT $3
"""
_SUMMARY = f"SELECT {_SUMMARY_COLUMNS} FROM run_metric_summaries WHERE run_id = $1 AND name = $2"
_SUMMARIES_OF_RUNS = f"""
    SELECT run_id, {_SUMMARY_COLUMNS} FROM run_metric_summaries WHERE run_id = ANY($1::uuid[])
    ORDER BY name, run_id
"""


class NameKey(CursorKey):
    """Where a page of a run's metrics ends: the name of its last one."""

    n: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00]*$")]


class MetricRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert_batch(
        self,
        *,
        run_id: uuid.UUID,
        client_batch_id: str | None,
        points: int,
        late: bool,
        received_at: datetime,
        logged_by: uuid.UUID,
    ) -> int | None:
        """The new batch's id, or None when it is stored already (same client batch id)."""
        batch_id: int | None = await self._conn.fetchval(
            _INSERT_BATCH,
            run_id,
            client_batch_id,
            points,
            late,
            received_at,
            logged_by,
            NOTIFY_CHANNEL,
        )
        return batch_id

    async def stored_batch(self, run_id: uuid.UUID, client_batch_id: str) -> StoredBatch:
        row = await self._conn.fetchrow(_STORED_BATCH, run_id, client_batch_id)
        return StoredBatch(points=row["points"], late=row["late"])

    async def highest_steps(self, run_id: uuid.UUID, names: list[str]) -> dict[str, int]:
        """The highest stored step of each name that has one, once the run's step lock is
        taken (needs a transaction)."""
        await self._conn.execute(_LOCK_STEPS, str(run_id))
        rows = await self._conn.fetch(_HIGHEST_STEPS, run_id, names)
        return {row["name"]: row["last_step"] for row in rows}

    async def copy_points(
        self,
        *,
        batch_id: int,
        run_id: uuid.UUID,
        batch: MetricBatch,
        steps: list[int],
        late: bool,
    ) -> None:
        await copy_columns(
            self._conn,
            "run_metrics",
            {
                "batch_id": Same(batch_id),
                "seq": itertools.count(),
                "run_id": Same(run_id),
                "name": batch.names,
                "step": steps,
                "value": batch.values,
                "timestamp": batch.timestamps,
                "late": Same(late),
            },
        )

    async def merge(self, run_id: uuid.UUID, summaries: list[Summary], tiles: list[Tile]) -> None:
        """Adds what a batch brings to the run's summaries and tiles."""
        await self._conn.execute(
            _MERGE,
            run_id,
            [s.name for s in summaries],
            [s.count for s in summaries],
            [s.finite_count for s in summaries],
            [s.min for s in summaries],
            [s.max for s in summaries],
            [s.sum for s in summaries],
            [s.last for s in summaries],
            [s.last_step for s in summaries],
            [s.last_timestamp for s in summaries],
            [t.name for t in tiles],
            [t.width for t in tiles],
            [t.tile for t in tiles],
            [t.extremes.first[1] for t in tiles],
            [t.extremes.first[0] for t in tiles],
            [t.extremes.last[1] for t in tiles],
            [t.extremes.last[0] for t in tiles],
            [None if t.extremes.low is None else t.extremes.low[1] for t in tiles],
            [None if t.extremes.low is None else t.extremes.low[0] for t in tiles],
            [None if t.extremes.high is None else t.extremes.high[1] for t in tiles],
            [None if t.extremes.high is None else t.extremes.high[0] for t in tiles],
        )

    async def summaries(self, run_id: uuid.UUID, page: PageRequest) -> Page[MetricSummary]:
        after = page.after(NameKey)
        rows = await self._conn.fetch(
            _SUMMARIES, run_id, None if after is None else after.n, page.fetch
        )
        return page.page(
            [MetricSummary(**dict(row)) for row in rows], key=lambda s: NameKey(n=s.name)
        )

    async def summaries_of_runs(
        self, run_ids: list[uuid.UUID]
    ) -> list[tuple[uuid.UUID, MetricSummary]]:
        """Every metric of each run, by name: (run id, summary)."""
        rows = await self._conn.fetch(_SUMMARIES_OF_RUNS, run_ids)
        return [
            (row["run_id"], MetricSummary(**{k: v for k, v in row.items() if k != "run_id"}))
            for row in rows
        ]

    async def summary(self, run_id: uuid.UUID, name: str) -> MetricSummary | None:
        row = await self._conn.fetchrow(_SUMMARY, run_id, name)
        return MetricSummary(**dict(row)) if row else None
