"""Forward-only SQL migrations: `migrations/<database>/NNNN_description.sql`, applied in order.

Each file runs in its own transaction together with its `schema_migrations` row, unless its first
line is `-- etp:no-transaction` (for statements such as CREATE INDEX CONCURRENTLY; such a file
holds a single statement). A session advisory lock serialises runners started at once.
"""

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

NO_TRANSACTION_MARKER = "-- etp:no-transaction"
LOCK_KEY = 0x4554505F4D494752  # "ETP_MIGR"
LOCK_POLL_SECONDS = 0.1
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_[a-z0-9_]+\.sql$")

SCHEMA_MIGRATIONS_DDL = """\
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL DEFAULT 0
);
"""
_SELECT_APPLIED = """
    SELECT version, name, checksum FROM schema_migrations ORDER BY version
"""
_TABLE_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"
_INSERT_APPLIED = """
    INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)
"""


class MigrationError(Exception):
    """The migrations on disk and those applied disagree, or a file failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str
    transactional: bool


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str


def discover(directory: Path) -> list[Migration]:
    """The migration files of one database, checked for names, duplicates and gaps."""
    if not directory.is_dir():
        raise MigrationError(f"migrations folder {directory} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: name must look like 0001_description.sql")
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version:04d} also used by {found[version].name}"
            )
        raw = path.read_bytes()
        sql = raw.decode("utf-8")
        found[version] = Migration(
            version=version,
            name=path.name,
            sql=sql,
            checksum=hashlib.sha256(raw).hexdigest(),
            transactional=not sql.lstrip().startswith(NO_TRANSACTION_MARKER),
        )
    migrations = [found[v] for v in sorted(found)]
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migration {expected:04d} is missing in {directory} "
                f"(next file is {migration.name})"
            )
    return migrations


async def applied_migrations(conn: asyncpg.Connection) -> list[AppliedMigration]:
    if not await conn.fetchval(_TABLE_EXISTS):
        return []
    return [AppliedMigration(**dict(row)) for row in await conn.fetch(_SELECT_APPLIED)]


def newer_than_known(
    migrations: list[Migration], applied: list[AppliedMigration]
) -> tuple[list[AppliedMigration], list[AppliedMigration]]:
    """The applied migrations split into those up to the newest this process knows and those
    after it: a newer release applied them (expand/contract, docs/operations.md)."""
    known = max((m.version for m in migrations), default=0)
    return (
        [row for row in applied if row.version <= known],
        [row for row in applied if row.version > known],
    )


def pending_migrations(
    migrations: list[Migration], applied: list[AppliedMigration], *, allow_newer: bool = False
) -> list[Migration]:
    """What is left to apply; refuses when applied files were edited, removed or reordered.
    With `allow_newer`, migrations applied after the newest one known here are left out (a newer
    release applied them: see newer_than_known); without, they count as removed files."""
    if allow_newer:
        applied, _ = newer_than_known(migrations, applied)
    by_version = {m.version: m for m in migrations}
    for row in applied:
        migration = by_version.get(row.version)
        if migration is None:
            raise MigrationError(f"applied migration {row.name} is missing from the folder")
        if migration.name != row.name:
            raise MigrationError(f"applied migration {row.name} was renamed to {migration.name}")
        if migration.checksum != row.checksum:
            raise MigrationError(
                f"applied migration {row.name} was edited after it was applied "
                f"(checksum {row.checksum[:12]}, file now {migration.checksum[:12]})"
            )
    done = {row.version for row in applied}
    pending = [m for m in migrations if m.version not in done]
    if pending and done and pending[0].version < max(done):
        raise MigrationError(f"{pending[0].name} is pending but a later migration is applied")
    return pending


async def migrate(
    conn: asyncpg.Connection,
    directory: Path,
    *,
    dry_run: bool = False,
    on_applied: Callable[[Migration, int], None] | None = None,
    allow_newer: bool = False,
) -> list[Migration]:
    """Apply the pending migrations of `directory`; returns them (only lists them on dry run).

    `allow_newer`: migrations applied after the newest in `directory` (by a newer release) are
    no error; a service starting with APPLY_MIGRATIONS passes it, the CLI does not."""
    migrations = discover(directory)
    if dry_run:
        return pending_migrations(
            migrations, await applied_migrations(conn), allow_newer=allow_newer
        )
    # Polled: a runner waiting inside pg_advisory_lock() holds a snapshot, and CREATE INDEX
    # CONCURRENTLY in the runner holding the lock waits for every older snapshot (a deadlock).
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):  # noqa: ASYNC110
        await asyncio.sleep(LOCK_POLL_SECONDS)
    try:
        await conn.execute(SCHEMA_MIGRATIONS_DDL)
        applied = await applied_migrations(conn)
        pending = pending_migrations(migrations, applied, allow_newer=allow_newer)
        _, newer = newer_than_known(migrations, applied)
        if newer and pending:
            raise MigrationError(
                f"{pending[0].name} is pending but a later migration is applied "
                f"({newer[0].name}, of a newer release)"
            )
        for migration in pending:
            duration_ms = await _apply(conn, migration)
            if on_applied is not None:
                on_applied(migration, duration_ms)
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def _apply(conn: asyncpg.Connection, migration: Migration) -> int:
    started = time.perf_counter()
    try:
        if migration.transactional:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await _record(conn, migration, started)
        else:
            await conn.execute(migration.sql)
            await _record(conn, migration, started)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"{migration.name} failed: {exc}") from exc
    return round((time.perf_counter() - started) * 1000)


async def _record(conn: asyncpg.Connection, migration: Migration, started: float) -> None:
    duration_ms = round((time.perf_counter() - started) * 1000)
    await conn.execute(
        _INSERT_APPLIED, migration.version, migration.name, migration.checksum, duration_ms
    )


def export_schema(directory: Path) -> str:
    """One SQL script equal to applying every migration, including its `schema_migrations` rows.

    The test harness loads it with psql, so services under test see no pending migration.
    """
    parts = [
        f"-- Generated by `bin/migrate export-schema` from {directory.name}/; do not edit.\n",
        SCHEMA_MIGRATIONS_DDL,
    ]
    for m in discover(directory):
        sql = m.sql.rstrip()
        if not sql.endswith(";"):
            # Else the INSERT below would continue a last statement written without `;`.
            sql += "\n;"
        parts.append(f"\n-- {m.name}\n{sql}\n")
        parts.append(
            "INSERT INTO schema_migrations (version, name, checksum) "
            f"VALUES ({m.version}, '{m.name}', '{m.checksum}');\n"
        )
    return "".join(parts)
