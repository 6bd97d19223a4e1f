"""When runs last showed life: their last change, telemetry batch (through the telemetry seam)
and metric batch; which running runs have shown none for their project's stale time."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

# Running runs untouched for their project's stale time (or the default), then those without a
# telemetry or metric batch since either; oldest first.
_STALE = """
    WITH candidates AS (
        SELECT r.id, r.updated_at,
               make_interval(secs => coalesce(ps.stale_run_after_seconds, $2::float8)) AS after
        FROM runs r LEFT JOIN project_settings ps ON ps.project_id = r.project_id
        WHERE r.status = 'running' AND ($4::uuid[] IS NULL OR r.id = ANY($4::uuid[]))
          AND r.updated_at < $1::timestamptz
                             - make_interval(secs => coalesce(ps.stale_run_after_seconds, $2))
    )
    SELECT c.id FROM candidates c
    LEFT JOIN telemetry_seam.last_telemetry(ARRAY(SELECT id FROM candidates)) t
        ON t.run_id = c.id
    WHERE greatest(
              c.updated_at,
              t.received_at,
              (SELECT m.received_at FROM run_metric_batches m WHERE m.run_id = c.id
               ORDER BY m.id DESC LIMIT 1)
          ) < $1::timestamptz - c.after
    ORDER BY c.updated_at, c.id
    LIMIT $3
"""


class RunActivityRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def stale(
        self,
        *,
        now: datetime,
        default_after: timedelta,
        limit: int,
        among: Sequence[uuid.UUID] | None = None,
    ) -> list[uuid.UUID]:
        """Running runs (of `among`, or all) with no change, telemetry or metric since their
        project's stale time (`default_after` where the project sets none) before `now`."""
        rows = await self._conn.fetch(
            _STALE,
            now,
            default_after.total_seconds(),
            limit,
            None if among is None else list(among),
        )
        return [row["id"] for row in rows]
