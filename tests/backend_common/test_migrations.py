import asyncio
import datetime as dt
import hashlib
from pathlib import Path

import asyncpg
import pytest

from backend_common.migrations import MigrationError, discover, export_schema, migrate

RUNS = {
    "0001_create_runs.sql": "CREATE TABLE runs (id integer PRIMARY KEY, name text NOT NULL);\n",
    "0002_add_runs_status.sql": (
        "ALTER TABLE runs ADD COLUMN status text NOT NULL DEFAULT 'queued';\n"
        "INSERT INTO runs (id, name) VALUES (1, 'seed');\n"
    ),
}


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql, encoding="utf-8")
    return directory


async def applied_rows(conn: asyncpg.Connection) -> list[tuple[int, str, str]]:
    rows = await conn.fetch(
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
    )
    return [tuple(row) for row in rows]


async def table_exists(conn: asyncpg.Connection, name: str) -> bool:
    return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
async def connect(pgsql, scratch_database):
    """Opens connections closed before the scratch databases are dropped.

    `pgsql` starts the test cluster, which `scratch_database` alone does not do.
    """
    opened: list[asyncpg.Connection] = []

    async def open_connection(url: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(url)
        opened.append(conn)
        return conn

    yield open_connection
    for conn in opened:
        await conn.close()


@pytest.fixture
async def url(connect, scratch_database):
    return await scratch_database()


@pytest.fixture
async def conn(url, connect):
    return await connect(url)


async def test_migrate_empty_database_applies_files_in_order(conn, tmp_path):
    directory = write_migrations(tmp_path, RUNS)

    applied = await migrate(conn, directory)

    assert [m.name for m in applied] == ["0001_create_runs.sql", "0002_add_runs_status.sql"]
    assert [tuple(r) for r in await conn.fetch("SELECT id, name, status FROM runs")] == [
        (1, "seed", "queued")
    ]
    assert await applied_rows(conn) == [
        (1, "0001_create_runs.sql", sha256_of(directory / "0001_create_runs.sql")),
        (2, "0002_add_runs_status.sql", sha256_of(directory / "0002_add_runs_status.sql")),
    ]


async def test_migrate_applied_file_records_applied_at_and_duration(conn, tmp_path):
    directory = write_migrations(
        tmp_path, {"0001_slow.sql": "SELECT pg_sleep(0.05);\n", "0002_fast.sql": "SELECT 1;\n"}
    )
    reported: dict[str, int] = {}
    before = dt.datetime.now(dt.UTC)

    await migrate(conn, directory, on_applied=lambda m, ms: reported.setdefault(m.name, ms))

    after = dt.datetime.now(dt.UTC)
    rows = await conn.fetch(
        "SELECT name, applied_at, duration_ms FROM schema_migrations ORDER BY version"
    )
    assert [row["name"] for row in rows] == ["0001_slow.sql", "0002_fast.sql"]
    for row in rows:
        assert before <= row["applied_at"] <= after
    assert rows[0]["duration_ms"] >= 50
    assert rows[1]["duration_ms"] >= 0
    assert reported.keys() == {"0001_slow.sql", "0002_fast.sql"}
    assert reported["0001_slow.sql"] >= 50


async def test_migrate_second_run_applies_nothing(conn, tmp_path):
    directory = write_migrations(tmp_path, RUNS)
    await migrate(conn, directory)
    first = await conn.fetch("SELECT * FROM schema_migrations ORDER BY version")

    applied = await migrate(conn, directory)

    assert applied == []
    assert await conn.fetch("SELECT * FROM schema_migrations ORDER BY version") == first
    assert await conn.fetchval("SELECT count(*) FROM runs") == 1


async def test_migrate_new_file_after_run_applies_only_it(conn, tmp_path):
    directory = write_migrations(tmp_path, RUNS)
    await migrate(conn, directory)
    write_migrations(tmp_path, {"0003_more_runs.sql": "INSERT INTO runs VALUES (2, 'b');"})

    applied = await migrate(conn, directory)

    assert [m.name for m in applied] == ["0003_more_runs.sql"]
    assert await conn.fetchval("SELECT count(*) FROM runs") == 2
    assert [row[0] for row in await applied_rows(conn)] == [1, 2, 3]


async def test_migrate_applied_file_edited_raises_naming_file(conn, tmp_path):
    directory = write_migrations(tmp_path, RUNS)
    await migrate(conn, directory)
    write_migrations(
        tmp_path,
        {
            "0001_create_runs.sql": RUNS["0001_create_runs.sql"] + "-- a harmless comment\n",
            "0003_more_runs.sql": "INSERT INTO runs (id, name) VALUES (2, 'b');\n",
        },
    )

    with pytest.raises(MigrationError, match=r"0001_create_runs\.sql was edited"):
        await migrate(conn, directory)
    assert [row[0] for row in await applied_rows(conn)] == [1, 2]
    assert await conn.fetchval("SELECT count(*) FROM runs") == 1


async def test_migrate_applied_file_removed_raises_naming_file(conn, tmp_path):
    directory = write_migrations(tmp_path, RUNS)
    await migrate(conn, directory)
    (directory / "0002_add_runs_status.sql").unlink()

    with pytest.raises(MigrationError, match=r"0002_add_runs_status\.sql is missing"):
        await migrate(conn, directory)


async def test_migrate_applied_file_renamed_raises_naming_both_names(conn, tmp_path):
    directory = write_migrations(tmp_path, RUNS)
    await migrate(conn, directory)
    (directory / "0002_add_runs_status.sql").rename(directory / "0002_add_status.sql")

    with pytest.raises(
        MigrationError, match=r"0002_add_runs_status\.sql was renamed to 0002_add_status\.sql"
    ):
        await migrate(conn, directory)


async def test_migrate_numbering_gap_raises_naming_missing_version(conn, tmp_path):
    directory = write_migrations(
        tmp_path, {"0001_a.sql": "CREATE TABLE a ();", "0003_c.sql": "CREATE TABLE c ();"}
    )

    with pytest.raises(MigrationError, match=r"migration 0002 is missing .*next file is 0003_c"):
        await migrate(conn, directory)
    assert not await table_exists(conn, "a")


@pytest.mark.parametrize(
    "name",
    ["1_init.sql", "00002_init.sql", "0002-init.sql", "0002_Init.sql", "0002_add runs.sql"],
)
async def test_migrate_bad_file_name_raises_naming_file(conn, tmp_path, name):
    directory = write_migrations(tmp_path, {"0001_a.sql": "CREATE TABLE a ();", name: "SELECT 1;"})

    with pytest.raises(MigrationError, match=rf"^{name}: name must look like"):
        await migrate(conn, directory)
    assert not await table_exists(conn, "a")


async def test_migrate_duplicate_version_raises_naming_both_files(conn, tmp_path):
    directory = write_migrations(
        tmp_path,
        {
            "0001_a.sql": "CREATE TABLE a ();",
            "0002_b.sql": "CREATE TABLE b ();",
            "0002_c.sql": "CREATE TABLE c ();",
        },
    )

    with pytest.raises(MigrationError, match=r"0002_c\.sql: version 0002 also used by 0002_b\.sql"):
        await migrate(conn, directory)
    assert not await table_exists(conn, "a")


async def test_migrate_missing_folder_raises_naming_folder(conn, tmp_path):
    with pytest.raises(MigrationError, match=r"nowhere does not exist"):
        await migrate(conn, tmp_path / "nowhere")


async def test_migrate_pending_file_below_applied_raises(conn, tmp_path):
    # As after restoring a database from a branch that skipped 0002.
    directory = write_migrations(tmp_path, {**RUNS, "0003_c.sql": "CREATE TABLE c ();"})
    await migrate(conn, directory)
    await conn.execute("DELETE FROM schema_migrations WHERE version = 2")

    with pytest.raises(
        MigrationError, match=r"0002_add_runs_status\.sql is pending but a later migration"
    ):
        await migrate(conn, directory)
    assert [row[0] for row in await applied_rows(conn)] == [1, 3]


async def test_migrate_two_runners_at_once_apply_each_file_once(
    scratch_database, connect, tmp_path
):
    directory = write_migrations(
        tmp_path,
        {
            "0001_create_applications.sql": "CREATE TABLE applications (file text NOT NULL);",
            # The sleep keeps the first runner busy while the second one arrives.
            "0002_record_application.sql": (
                "INSERT INTO applications VALUES ('0002'); SELECT pg_sleep(0.2);"
            ),
        },
    )
    url = await scratch_database()
    first, second = await connect(url), await connect(url)

    results = await asyncio.gather(migrate(first, directory), migrate(second, directory))

    assert sorted(len(applied) for applied in results) == [0, 2]
    assert [row[0] for row in await applied_rows(first)] == [1, 2]
    assert await first.fetchval("SELECT count(*) FROM applications") == 1


async def test_migrate_two_runners_with_concurrent_index_apply_each_file_once(
    scratch_database, connect, tmp_path
):
    # CREATE INDEX CONCURRENTLY waits for every older snapshot, including that of a runner
    # waiting for the migration lock.
    directory = write_migrations(
        tmp_path,
        {
            "0001_create_runs.sql": RUNS["0001_create_runs.sql"],
            "0002_index_runs_name.sql": (
                "-- etp:no-transaction\nCREATE INDEX CONCURRENTLY runs_name ON runs (name);\n"
            ),
        },
    )
    url = await scratch_database()
    first, second = await connect(url), await connect(url)

    results = await asyncio.wait_for(
        asyncio.gather(migrate(first, directory), migrate(second, directory)), timeout=10
    )

    assert sorted(len(applied) for applied in results) == [0, 2]
    assert [row[0] for row in await applied_rows(first)] == [1, 2]
    assert await first.fetchval(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'runs_name'::regclass"
    )


async def test_migrate_dry_run_on_empty_database_changes_nothing_and_lists_pending(conn, tmp_path):
    directory = write_migrations(tmp_path, RUNS)

    pending = await migrate(conn, directory, dry_run=True)

    assert [m.name for m in pending] == ["0001_create_runs.sql", "0002_add_runs_status.sql"]
    assert not await table_exists(conn, "schema_migrations")
    assert not await table_exists(conn, "runs")


async def test_migrate_dry_run_after_partial_run_lists_only_new_files(conn, tmp_path):
    directory = write_migrations(tmp_path, RUNS)
    await migrate(conn, directory)
    write_migrations(tmp_path, {"0003_c.sql": "CREATE TABLE c ();"})

    pending = await migrate(conn, directory, dry_run=True)

    assert [m.name for m in pending] == ["0003_c.sql"]
    assert [row[0] for row in await applied_rows(conn)] == [1, 2]
    assert not await table_exists(conn, "c")


async def test_migrate_dry_run_edited_applied_file_raises(conn, tmp_path):
    directory = write_migrations(tmp_path, RUNS)
    await migrate(conn, directory)
    write_migrations(tmp_path, {"0002_add_runs_status.sql": "SELECT 'edited';\n"})

    with pytest.raises(MigrationError, match=r"0002_add_runs_status\.sql was edited"):
        await migrate(conn, directory, dry_run=True)


async def test_migrate_failing_file_rolls_back_entirely_naming_file(conn, tmp_path):
    directory = write_migrations(
        tmp_path,
        {
            **RUNS,
            "0003_break.sql": (
                "CREATE TABLE half_done (id integer);\n"
                "INSERT INTO runs (id, name) VALUES (2, 'half');\n"
                "INSERT INTO no_such_table VALUES (1);\n"
            ),
            "0004_after.sql": "CREATE TABLE after_break ();",
        },
    )

    with pytest.raises(MigrationError, match=r"^0003_break\.sql failed: .*no_such_table"):
        await migrate(conn, directory)

    assert [row[1] for row in await applied_rows(conn)] == [
        "0001_create_runs.sql",
        "0002_add_runs_status.sql",
    ]
    assert not await table_exists(conn, "half_done")
    assert not await table_exists(conn, "after_break")
    assert await conn.fetchval("SELECT count(*) FROM runs") == 1
    assert not conn.is_in_transaction()


async def test_migrate_no_transaction_file_creates_index_concurrently_and_records_it(
    conn, tmp_path
):
    directory = write_migrations(
        tmp_path,
        {
            "0001_create_runs.sql": RUNS["0001_create_runs.sql"],
            "0002_index_runs_name.sql": (
                "-- etp:no-transaction\nCREATE INDEX CONCURRENTLY runs_name ON runs (name);\n"
            ),
        },
    )

    applied = await migrate(conn, directory)

    assert [m.transactional for m in applied] == [True, False]
    assert await conn.fetchval(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'runs_name'::regclass"
    )
    assert await applied_rows(conn) == [
        (1, "0001_create_runs.sql", sha256_of(directory / "0001_create_runs.sql")),
        (2, "0002_index_runs_name.sql", sha256_of(directory / "0002_index_runs_name.sql")),
    ]


async def test_migrate_concurrent_index_without_marker_raises_naming_file(conn, tmp_path):
    directory = write_migrations(
        tmp_path,
        {
            "0001_create_runs.sql": RUNS["0001_create_runs.sql"],
            "0002_index_runs_name.sql": "CREATE INDEX CONCURRENTLY runs_name ON runs (name);\n",
        },
    )

    with pytest.raises(MigrationError, match=r"^0002_index_runs_name\.sql failed: .*transaction"):
        await migrate(conn, directory)
    assert [row[0] for row in await applied_rows(conn)] == [1]


def test_discover_marker_after_first_line_keeps_transaction(tmp_path):
    directory = write_migrations(
        tmp_path,
        {
            "0001_a.sql": "\n-- etp:no-transaction\nCREATE TABLE a ();",
            "0002_b.sql": "CREATE TABLE b ();\n-- etp:no-transaction\n",
        },
    )

    assert [m.transactional for m in discover(directory)] == [False, True]


async def test_export_schema_loaded_equals_migrate(scratch_database, connect, tmp_path):
    directory = write_migrations(
        tmp_path,
        {
            **RUNS,
            "0003_quotes_and_functions.sql": (
                "COMMENT ON TABLE runs IS 'it''s a run';\n"
                "CREATE FUNCTION run_count() RETURNS bigint LANGUAGE sql AS $$\n"
                "    SELECT count(*) FROM runs;\n"
                "$$;\n"
            ),
        },
    )
    migrated = await connect(await scratch_database())
    loaded = await connect(await scratch_database())
    await migrate(migrated, directory)

    await loaded.execute(export_schema(directory))

    assert await applied_rows(loaded) == await applied_rows(migrated)
    columns = """
        SELECT table_name, column_name, data_type, column_default
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY table_name, column_name
    """
    assert await loaded.fetch(columns) == await migrated.fetch(columns)
    assert await loaded.fetchval("SELECT run_count()") == 1
    assert await migrate(loaded, directory) == []


async def test_export_schema_file_without_final_semicolon_loads(conn, tmp_path):
    # migrate() accepts a last statement without `;`, so the export must too.
    directory = write_migrations(
        tmp_path,
        {
            "0001_create_runs.sql": "CREATE TABLE runs (id integer)",
            "0002_add_name.sql": "ALTER TABLE runs ADD COLUMN name text -- for display\n",
        },
    )

    await conn.execute(export_schema(directory))

    assert [row[1] for row in await applied_rows(conn)] == [
        "0001_create_runs.sql",
        "0002_add_name.sql",
    ]
    assert await migrate(conn, directory) == []


async def test_export_schema_with_no_transaction_file_loads_with_psql(url, conn, tmp_path):
    # The test harness loads exports with psql, which runs each statement on its own.
    directory = write_migrations(
        tmp_path / "migrations",
        {
            "0001_create_runs.sql": RUNS["0001_create_runs.sql"],
            "0002_index_runs_name.sql": (
                "-- etp:no-transaction\nCREATE INDEX CONCURRENTLY runs_name ON runs (name);\n"
            ),
        },
    )
    export = tmp_path / "schema.sql"
    export.write_text(export_schema(directory), encoding="utf-8")
    psql = await asyncio.create_subprocess_exec(
        "psql",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        url,
        "-f",
        str(export),
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await psql.communicate()

    assert psql.returncode == 0, stderr.decode()
    assert [row[0] for row in await applied_rows(conn)] == [1, 2]
    assert await migrate(conn, directory) == []
