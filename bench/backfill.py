#!/usr/bin/env python3
"""Backfill rate: readings converted again per second by the telemetry job
`telemetry.conversion_backfill`, on a migrated experiment database (no stack).

    .venv/bin/python bench/backfill.py --dsn postgresql://…/experiment [--readings 10000000]
        [--chunk 10000] [--lanes 2]

Stores `--readings` readings of a throwaway sensor (one a millisecond, converted by a linear
profile), publishes a second linear profile over all of them as a backfill does (the row the
publish writes), runs the job's work to the end with chunks of `--chunk` readings in `--lanes`
lanes, checks every reading, prints readings per second, and deletes what it made.
"""

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from backend_common.clock import utc_now
from backend_common.db import Database, create_pool
from telemetry_ingest_service.domain.backfills import ConversionBackfills

_SENSOR = """
    INSERT INTO sensors (project_id, name, type, input_unit, display_unit, created_by)
    VALUES ($1, 'bench backfill', 'bench', 'mV', 'kPa', $1) RETURNING id
"""
_PROFILE = """
    INSERT INTO conversion_profiles
        (sensor_id, version, kind, payload, created_by, published_by, valid_from)
    VALUES ($1, $2, 'linear', $3, $4, $4, $5) RETURNING id
"""
_READINGS = """
    INSERT INTO telemetry_records
        (batch_id, seq, sensor_id, "timestamp", received_at, raw_value, physical_value,
         conversion_status, profile_id)
    SELECT $2 + n / 10000, n % 10000, $1, $3::timestamptz + n * interval '1 millisecond', $3,
           n, 2.0 * n, 'ok', $4
    FROM generate_series($5::bigint, $6::bigint - 1) AS n
"""
_BACKFILL = """
    INSERT INTO conversion_backfills
        (sensor_id, profile_id, range_from, rows_total, started_at, updated_at)
    VALUES ($1, $2, $3, $4, now(), now()) RETURNING id
"""
_CHECK = """
    SELECT count(*) FILTER (WHERE profile_id = $2 AND physical_value = 10.0 * raw_value + 1.0)
    FROM telemetry_records WHERE sensor_id = $1
"""
_CLEANUP = (
    "DELETE FROM telemetry_records WHERE sensor_id = $1",
    "DELETE FROM telemetry_rollup_pending WHERE sensor_id = $1",
    "DELETE FROM sensors WHERE id = $1",
)


async def seed(conn: asyncpg.Connection, readings: int, start: datetime) -> tuple:
    project = uuid.uuid4()
    sensor = await conn.fetchval(_SENSOR, project)
    old = await conn.fetchval(
        _PROFILE, sensor, "a", {"a": 2.0, "b": 0.0}, project, start - timedelta(days=1)
    )
    step = 1_000_000
    batch_base = int(time.time() * 1000) * 1000
    for first in range(0, readings, step):
        await conn.execute(
            _READINGS, sensor, batch_base, start, old, first, min(first + step, readings)
        )
    return sensor, project


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--lanes", type=int, default=2)
    args = parser.parse_args(argv)
    pool = await create_pool(args.dsn, min_size=1, max_size=args.lanes + 1)
    db = Database(pool)
    start = datetime.now(UTC) - timedelta(milliseconds=args.readings + 60_000)
    async with pool.acquire() as conn:
        began = time.perf_counter()
        sensor, project = await seed(conn, args.readings, start)
        print(f"stored {args.readings:,} readings in {time.perf_counter() - began:.1f} s")
        try:
            # The new profile from the first reading on; the old one ends there.
            await conn.execute(
                "UPDATE conversion_profiles SET valid_to = $2 WHERE sensor_id = $1", sensor, start
            )
            new = await conn.fetchval(_PROFILE, sensor, "b", {"a": 10.0, "b": 1.0}, project, start)
            await conn.execute("ANALYZE telemetry_records")
            await conn.fetchval(_BACKFILL, sensor, new, start, args.readings)
            job = ConversionBackfills(db, utc_now, chunk=args.chunk, lanes=args.lanes)
            began = time.perf_counter()
            result = await job.run(utc_now())
            seconds = time.perf_counter() - began
            converted = await conn.fetchval(_CHECK, sensor, new)
            assert converted == args.readings, (converted, result)
            print(
                f"backfilled {result['readings']:,} readings in {seconds:.2f} s"
                f" (chunks of {args.chunk:,}, {args.lanes} lanes):"
                f" {result['readings'] / seconds:,.0f} readings/s"
            )
        finally:
            for sql in _CLEANUP:
                await conn.execute(sql, sensor)
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
