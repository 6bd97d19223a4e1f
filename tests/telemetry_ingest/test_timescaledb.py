"""The migrations on a PostgreSQL that preloads TimescaleDB (the TimescaleDB pass only): readings
go to a hypertable of 1-day chunks compressed after 7 days, and the migration runner builds the
same database as the schema export the tests load (which is every migration in one script)."""

from datetime import timedelta
from typing import Any

import asyncpg

from backend_common.migrations import migrate
from backend_common.paths import MIGRATIONS_ROOT
from tests.plugins.databases import timescaledb_only

pytestmark = timescaledb_only

_INTERNAL = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
    " AND n.nspname NOT LIKE '%timescaledb%'"
)
DESCRIBE = {
    "migrations": "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
    "columns": f"""
        SELECT n.nspname, c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, a.attgenerated, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE {_INTERNAL} AND c.relkind IN ('r', 'p', 'v', 'm')
        ORDER BY 1, 2, 4
    """,
    "indexes": f"""
        SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_INTERNAL}
        ORDER BY 1, 2
    """,
    "constraints": f"""
        SELECT n.nspname, r.relname, o.conname, pg_get_constraintdef(o.oid)
        FROM pg_constraint o
        JOIN pg_class r ON r.oid = o.conrelid
        JOIN pg_namespace n ON n.oid = r.relnamespace
        WHERE {_INTERNAL}
        ORDER BY 1, 2, 3
    """,
    "functions": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc)
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {_INTERNAL} AND NOT EXISTS (
            SELECT 1 FROM pg_depend e WHERE e.objid = p.oid AND e.deptype = 'e'
        )
        ORDER BY 1, 2, 3
    """,
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND n.nspname NOT LIKE '%timescaledb%'
        ORDER BY 1, 2
    """,
    "extensions": "SELECT extname, extversion FROM pg_extension ORDER BY 1",
    "hypertables": """
        SELECT h.hypertable_name, d.column_name, d.time_interval, h.compression_enabled
        FROM timescaledb_information.hypertables h
        JOIN timescaledb_information.dimensions d USING (hypertable_schema, hypertable_name)
        ORDER BY 1, 2
    """,
    "compression": """
        SELECT hypertable::text, segmentby, orderby
        FROM timescaledb_information.hypertable_compression_settings
        ORDER BY 1
    """,
    "compression_policies": """
        SELECT hypertable_name, schedule_interval, config - 'hypertable_id'
        FROM timescaledb_information.jobs
        WHERE proc_name = 'policy_compression'
        ORDER BY 1
    """,
}


async def describe(url: str) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(url)
    try:
        return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in DESCRIBE.items()}
    finally:
        await conn.close()


async def test_readings_are_a_hypertable_of_days_compressed_after_a_week(pgsql, database_url):
    schema = await describe(database_url("experiment"))

    assert schema["hypertables"] == [("telemetry_records", "timestamp", timedelta(days=1), True)]
    assert schema["compression"] == [("telemetry_records", "sensor_id", '"timestamp",batch_id,seq')]
    assert [(name, config) for name, _, config in schema["compression_policies"]] == [
        ("telemetry_records", '{"compress_after": "7 days"}')
    ]
    conn = await asyncpg.connect(database_url("experiment"))
    try:
        assert await conn.fetchval("SELECT telemetry_storage()") == "timescaledb"
        # Nothing to partition on this storage: no partition appears.
        await conn.execute("SELECT telemetry_ensure_partitions(now(), 3)")
        assert not await conn.fetchval(
            "SELECT count(*) FROM pg_class"
            " WHERE relname ~ '^telemetry_records_(default|[0-9]{4}_[0-9]{2})$'"
        )
    finally:
        await conn.close()


async def test_the_migration_runner_builds_the_database_the_tests_load(
    pgsql, database_url, scratch_database
):
    url = await scratch_database()
    conn = await asyncpg.connect(url)
    try:
        applied = await migrate(conn, MIGRATIONS_ROOT / "experiment")
    finally:
        await conn.close()

    assert applied
    migrated, loaded = await describe(url), await describe(database_url("experiment"))
    assert migrated["hypertables"], "the runner made no hypertable"
    for part in DESCRIBE:
        assert migrated[part] == loaded[part], part
