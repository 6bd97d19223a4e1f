"""SQL of reading a run's metric series: pages of points in step order, the raw points and the
kept tiles a chart is drawn from, and the stored batches live streams replay."""

import uuid
from dataclasses import replace
from typing import Annotated, Any

import asyncpg
from pydantic import Field

from backend_common.downsampling import Extremes
from backend_common.pagination import CursorKey, Page, PageRequest
from backend_common.sql import Query
from experiment_service.domain.metric_batch import STEP_MAX, STEP_MIN
from experiment_service.domain.metric_live import RunFilter
from experiment_service.domain.metric_models import MetricPoint, SeriesFilter
from experiment_service.repositories.cursor_keys import BigId, Int4

_ORDER = "ORDER BY step, batch_id, seq"
# The tiles of `width` steps numbered $4 to $5 merged into buckets of $7 tiles from tile $6:
# each bucket's first point is its first tile's, its last its last tile's, its lowest and
# highest the extreme ones of its tiles (the earliest tile's on a tie).
_TILE_BUCKETS = """
    SELECT (tile - $6) / $7 AS bucket,
           (array_agg(first_step ORDER BY tile))[1] AS first_step,
           (array_agg(first ORDER BY tile))[1] AS first,
           (array_agg(last_step ORDER BY tile DESC))[1] AS last_step,
           (array_agg(last ORDER BY tile DESC))[1] AS last,
           (array_agg(min_step ORDER BY min, tile) FILTER (WHERE min IS NOT NULL))[1] AS min_step,
           min(min) AS min,
           (array_agg(max_step ORDER BY max DESC, tile) FILTER (WHERE max IS NOT NULL))[1]
               AS max_step,
           max(max) AS max
    FROM run_metric_tiles
    WHERE run_id = $1 AND name = $2 AND width = $3 AND tile BETWEEN $4 AND $5
    GROUP BY bucket
"""
_BATCH_POINTS = """
    SELECT name, step, value, "timestamp", late FROM run_metrics WHERE batch_id = $1 ORDER BY seq
"""
_BATCHES_AFTER = """
    SELECT id FROM (
        SELECT id FROM run_metric_batches WHERE run_id = $1 AND id > $2 ORDER BY id DESC LIMIT $3
    ) newest ORDER BY id
"""
_LATEST_BATCH = "SELECT coalesce(max(id), 0) FROM run_metric_batches"


class PointKey(CursorKey):
    """Where a page of a series ends: (step, batch, place in the batch) of its last point."""

    s: Annotated[int, Field(strict=True, ge=STEP_MIN, le=STEP_MAX)]
    b: Annotated[BigId, Field(strict=True)]
    q: Annotated[Int4, Field(strict=True)]


def _where(query: Query, run_id: uuid.UUID, name: str, flt: SeriesFilter) -> str:
    query.where(f"run_id = {query.param(run_id)} AND name = {query.param(name)}")
    bounds = (
        ("step >=", flt.step_from),
        ("step <", flt.step_to),
        ('"timestamp" >=', flt.time_from),
        ('"timestamp" <', flt.time_to),
    )
    for comparison, bound in bounds:
        if bound is not None:
            query.where(f"{comparison} {query.param(bound)}")
    return query.where_sql


class SeriesRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def page(
        self, run_id: uuid.UUID, name: str, flt: SeriesFilter, page: PageRequest
    ) -> Page[MetricPoint]:
        """Points in (step, batch, place) order, after the cursor's point: an ordered scan of
        the (run, name, step) index that stops at the page's end."""
        query = Query()
        where = _where(query, run_id, name, flt)
        after = page.after(PointKey)
        if after is not None:
            step, batch, seq = query.param(after.s), query.param(after.b), query.param(after.q)
            # The plain `step >=` bounds the index scan; the row comparison orders ties.
            where += f" AND step >= {step} AND (step, batch_id, seq) > ({step}, {batch}, {seq})"
        sql = (
            f'SELECT step, value, "timestamp", late, batch_id, seq FROM run_metrics WHERE {where}'
            f" {_ORDER} LIMIT {query.param(page.fetch)}"
        )
        rows = await self._conn.fetch(sql, *query.params)
        cut = page.page(
            rows, key=lambda row: PointKey(s=row["step"], b=row["batch_id"], q=row["seq"])
        )
        return cut.map(
            lambda row: MetricPoint(row["step"], row["value"], row["timestamp"], row["late"])
        )

    async def points(
        self, run_id: uuid.UUID, name: str, flt: SeriesFilter, *, limit: int
    ) -> list[tuple[int, float]]:
        """The first `limit` points' (step, value), in step order."""
        query = Query()
        where = _where(query, run_id, name, flt)
        sql = (
            f"SELECT step, value FROM run_metrics WHERE {where} {_ORDER} LIMIT {query.param(limit)}"
        )
        return [(row["step"], row["value"]) for row in await self._conn.fetch(sql, *query.params)]

    async def step_extent(
        self, run_id: uuid.UUID, name: str, flt: SeriesFilter
    ) -> tuple[int, int] | None:
        """The lowest and highest step of the points in the step range (None: there are none)."""
        query = Query()
        where = _where(query, run_id, name, replace(flt, time_from=None, time_to=None))
        # Two index probes, spelt out: with statistics not yet updated after a big load,
        # the planner may answer min()/max() by reading every point of the series.
        row = await self._conn.fetchrow(
            f"SELECT (SELECT step FROM run_metrics WHERE {where} ORDER BY step LIMIT 1) AS lo,"
            f" (SELECT step FROM run_metrics WHERE {where} ORDER BY step DESC LIMIT 1) AS hi",
            *query.params,
        )
        return None if row["lo"] is None else (row["lo"], row["hi"])

    async def tile_buckets(
        self,
        run_id: uuid.UUID,
        name: str,
        *,
        width: int,
        first: int,
        last: int,
        origin: int,
        per_bucket: int,
    ) -> list[tuple[int, Extremes[int]]]:
        """The kept tiles of `width` steps numbered `first` to `last`, merged into buckets of
        `per_bucket` tiles from tile `origin`, as (bucket, extremes)."""
        rows = await self._conn.fetch(
            _TILE_BUCKETS, run_id, name, width, first, last, origin, per_bucket
        )
        return [(row["bucket"], _extremes(row)) for row in rows]

    async def count_upto(
        self, run_id: uuid.UUID, name: str, flt: SeriesFilter, *, most: int
    ) -> int:
        """How many points are selected, counting no further than `most`."""
        query = Query()
        where = _where(query, run_id, name, flt)
        count: int = await self._conn.fetchval(
            f"SELECT count(*) FROM (SELECT 1 FROM run_metrics WHERE {where}"
            f" LIMIT {query.param(most)}) selected",
            *query.params,
        )
        return count

    async def batch_items(self, batch_id: int) -> list[dict[str, Any]]:
        """One stored batch's points, in the order they came."""
        return [dict(row) for row in await self._conn.fetch(_BATCH_POINTS, batch_id)]

    async def batches_after(self, flt: RunFilter, after: int, *, limit: int) -> list[int]:
        """Ids of the run's stored batches after `after`, oldest first (at most `limit`, the
        newest ones)."""
        rows = await self._conn.fetch(_BATCHES_AFTER, flt.run_id, after, limit)
        return [row["id"] for row in rows]

    async def latest_batch(self) -> int:
        batch_id: int = await self._conn.fetchval(_LATEST_BATCH)
        return batch_id


def _extremes(row: asyncpg.Record) -> Extremes[int]:
    return Extremes(
        (row["first_step"], row["first"]),
        (row["last_step"], row["last"]),
        None if row["min"] is None else (row["min_step"], row["min"]),
        None if row["max"] is None else (row["max_step"], row["max"]),
    )
