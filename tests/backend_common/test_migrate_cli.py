import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from backend_common.migrations import __main__ as cli
from backend_common.migrations import export_schema
from backend_common.paths import MIGRATIONS_ROOT, PROJECT_ROOT
from tests.backend_common.test_migrations import RUNS, write_migrations

MIGRATE = PROJECT_ROOT / "bin" / "migrate"


@dataclass(frozen=True)
class Result:
    code: int
    stdout: list[str]
    stderr: str


async def run_migrate(*args: str, env: dict[str, str] | None = None) -> Result:
    process = await asyncio.create_subprocess_exec(
        str(MIGRATE),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    stdout, stderr = await process.communicate()
    return Result(process.returncode, stdout.decode().splitlines(), stderr.decode())


def without_timings(lines: list[str]) -> list[str]:
    return [line.split(" (")[0] for line in lines]


@pytest.fixture
async def url(pgsql, scratch_database):
    # `pgsql` starts the test cluster, which `scratch_database` alone does not do.
    return await scratch_database()


@pytest.fixture
def migrations(tmp_path) -> Path:
    return write_migrations(tmp_path, RUNS)


async def applied_names(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            return []
        return [r[0] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY 1")]
    finally:
        await conn.close()


async def test_up_pending_files_applies_them_and_prints_each(url, migrations):
    result = await run_migrate("demo", "--dsn", url, "--dir", str(migrations))

    assert result.code == 0, result.stderr
    assert without_timings(result.stdout) == [
        "applied  0001_create_runs.sql",
        "applied  0002_add_runs_status.sql",
    ]
    assert all(line.endswith(" ms)") for line in result.stdout)
    assert await applied_names(url) == ["0001_create_runs.sql", "0002_add_runs_status.sql"]


async def test_up_nothing_pending_prints_nothing_to_apply(url, migrations):
    await run_migrate("demo", "--dsn", url, "--dir", str(migrations))

    result = await run_migrate("demo", "up", "--dsn", url, "--dir", str(migrations))

    assert result.code == 0, result.stderr
    assert result.stdout == ["demo: nothing to apply"]


async def test_up_dsn_from_environment_applies(url, migrations):
    result = await run_migrate("demo", "--dir", str(migrations), env={"DEMO_DATABASE_URL": url})

    assert result.code == 0, result.stderr
    assert len(await applied_names(url)) == 2


async def test_up_without_dsn_exits_2_asking_for_it(migrations):
    env = {k: v for k, v in os.environ.items() if k != "DEMO_DATABASE_URL"}
    process = await asyncio.create_subprocess_exec(
        str(MIGRATE), "demo", "--dir", str(migrations), stderr=asyncio.subprocess.PIPE, env=env
    )
    _, stderr = await process.communicate()

    assert process.returncode == 2
    assert "give --dsn or set DEMO_DATABASE_URL" in stderr.decode()


async def test_status_partly_applied_prints_applied_and_pending(url, migrations):
    await run_migrate("demo", "--dsn", url, "--dir", str(migrations))
    write_migrations(migrations, {"0003_c.sql": "CREATE TABLE c ();"})

    result = await run_migrate("demo", "status", "--dsn", url, "--dir", str(migrations))

    assert result.code == 0, result.stderr
    assert result.stdout == [
        "applied  0001_create_runs.sql",
        "applied  0002_add_runs_status.sql",
        "pending  0003_c.sql",
    ]
    assert len(await applied_names(url)) == 2


async def test_status_empty_database_prints_all_pending_and_changes_nothing(url, migrations):
    result = await run_migrate("demo", "status", "--dsn", url, "--dir", str(migrations))

    assert result.code == 0, result.stderr
    assert result.stdout == ["pending  0001_create_runs.sql", "pending  0002_add_runs_status.sql"]
    assert await applied_names(url) == []


async def test_dry_run_prints_pending_and_changes_nothing(url, migrations):
    result = await run_migrate("demo", "--dsn", url, "--dir", str(migrations), "--dry-run")

    assert result.code == 0, result.stderr
    assert result.stdout == ["pending  0001_create_runs.sql", "pending  0002_add_runs_status.sql"]
    assert await applied_names(url) == []


async def test_up_edited_applied_file_exits_1_naming_file_on_stderr(url, migrations):
    await run_migrate("demo", "--dsn", url, "--dir", str(migrations))
    write_migrations(migrations, {"0001_create_runs.sql": "CREATE TABLE runs (id bigint);\n"})

    result = await run_migrate("demo", "--dsn", url, "--dir", str(migrations))

    assert result.code == 1
    assert result.stdout == []
    assert result.stderr.startswith("migrate: applied migration 0001_create_runs.sql was edited")
    assert "Traceback" not in result.stderr


async def test_up_failing_file_exits_1_naming_file_on_stderr(url, migrations):
    write_migrations(migrations, {"0003_break.sql": "INSERT INTO no_such_table VALUES (1);"})

    result = await run_migrate("demo", "--dsn", url, "--dir", str(migrations))

    assert result.code == 1
    assert without_timings(result.stdout) == [
        "applied  0001_create_runs.sql",
        "applied  0002_add_runs_status.sql",
    ]
    assert result.stderr.startswith("migrate: 0003_break.sql failed")


async def test_export_schema_check_committed_exports_pass():
    result = await run_migrate("export-schema", "--check")

    assert result.code == 0, "\n".join(result.stdout) + result.stderr
    assert result.stdout == []


def test_export_schema_committed_exports_cover_every_database():
    exported = sorted(p.stem for p in (PROJECT_ROOT / "tests" / "schemas").glob("*.sql"))

    assert exported == cli.databases()
    for database in exported:
        committed = (PROJECT_ROOT / "tests" / "schemas" / f"{database}.sql").read_text()
        assert committed == export_schema(MIGRATIONS_ROOT / database), database


def test_export_schema_check_after_new_migration_reports_stale(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(cli, "MIGRATIONS_ROOT", tmp_path / "migrations")
    monkeypatch.setattr(cli, "SCHEMAS_ROOT", tmp_path / "tests" / "schemas")
    write_migrations(tmp_path / "migrations" / "demo", RUNS)
    assert cli.main(["export-schema"]) == 0
    assert cli.main(["export-schema", "--check"]) == 0
    write_migrations(tmp_path / "migrations" / "demo", {"0003_c.sql": "CREATE TABLE c ();"})
    capsys.readouterr()

    assert cli.main(["export-schema", "--check"]) == 1

    assert "stale schema export: tests/schemas/demo.sql" in capsys.readouterr().out
    assert "0003_c.sql" not in (tmp_path / "tests" / "schemas" / "demo.sql").read_text()
