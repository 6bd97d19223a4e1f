"""Migration 0015 on a database that already holds readings of a multi-channel sensor and a
rollup that mixed its channels: the stored minutes are labelled with the default channel, the
days whose readings are still there are queued, and the refresher then stores them per channel;
a day whose readings are gone keeps its rollup."""

import shutil
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from backend_common.clock import utc_now
from backend_common.db import Database, create_pool
from backend_common.migrations import migrate
from backend_common.paths import MIGRATIONS_ROOT
from telemetry_ingest_service.domain.rollup import Rollup

CHANNELS = "0015_sensor_channels.sql"


@pytest.fixture
async def url(pgsql, scratch_database):
    return await scratch_database()


@pytest.fixture
async def conn(url):
    opened = await asyncpg.connect(url)
    yield opened
    await opened.close()


async def test_mixed_rollup_rows_are_recomputed_per_channel(conn, url, tmp_path):
    before = tmp_path / "experiment"
    before.mkdir()
    for path in sorted((MIGRATIONS_ROOT / "experiment").glob("*.sql")):
        if path.name < CHANNELS:
            shutil.copy(path, before / path.name)
    await migrate(conn, before)
    sensor = await conn.fetchval(
        "INSERT INTO sensors (project_id, name, type, input_unit, display_unit, created_by)"
        " VALUES (gen_random_uuid(), 's', 't', 'V', 'V', gen_random_uuid()) RETURNING id"
    )
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    gone = day - timedelta(days=3)  # its readings were dropped, its rollup kept
    readings = [(day + timedelta(seconds=s), float(s), {"a": "x", "b": "y"}[ch]) for s, ch in (
        (0, "a"), (10, "b"), (20, "a"), (70, "b"),
    )]  # fmt: skip
    for seq, (at, value, signal) in enumerate(readings):
        await conn.execute(
            'INSERT INTO telemetry_records (batch_id, seq, sensor_id, "timestamp", received_at,'
            " raw_value, physical_value, conversion_status, meta)"
            " VALUES (1, $1, $2, $3, $3, $4, $4, 'ok', jsonb_build_object('signal', $5::text))",
            seq,
            sensor,
            at,
            value,
            signal,
        )
    for minute, count in ((gone, 5), (day, 3), (day + timedelta(minutes=1), 1)):
        for layer in ("raw", "physical"):
            await conn.execute(
                "INSERT INTO telemetry_rollup (sensor_id, layer, minute, count, min, max, avg,"
                " twa, first, last, first_at) VALUES ($1, $2, $3, $4, 0, 1, 0.5, 0.5, 0, 1, $3)",
                sensor,
                layer,
                minute,
                count,
            )

    shutil.copy(MIGRATIONS_ROOT / "experiment" / CHANNELS, before / CHANNELS)
    await migrate(conn, before)

    rows = await conn.fetch(
        "SELECT signal, minute, count FROM telemetry_rollup WHERE layer = 'raw'"
    )
    assert {(r["signal"], r["minute"], r["count"]) for r in rows} == {
        ("value", gone, 5),
        ("value", day, 3),
        ("value", day + timedelta(minutes=1), 1),
    }
    queued = await conn.fetch(
        "SELECT sensor_id, first_minute, last_minute FROM telemetry_rollup_pending"
    )
    assert [tuple(r) for r in queued] == [(sensor, day, day + timedelta(minutes=1))]

    pool = await create_pool(url, max_size=2)
    try:
        await Rollup(Database(pool), clock=utc_now, grace=timedelta(0)).refresh()
    finally:
        await pool.close()
    rows = await conn.fetch(
        "SELECT signal, minute, count, first, last FROM telemetry_rollup WHERE layer = 'raw'"
    )
    assert {tuple(r) for r in rows} == {
        ("value", gone, 5, 0.0, 1.0),  # no readings to recompute it from: kept as it was
        ("x", day, 2, 0.0, 20.0),
        ("y", day, 1, 10.0, 10.0),
        ("y", day + timedelta(minutes=1), 1, 70.0, 70.0),
    }
    assert await conn.fetchval("SELECT count(*) FROM telemetry_rollup_pending") == 0
