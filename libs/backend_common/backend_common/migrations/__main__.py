"""bin/migrate: apply, list or export the migrations of a database.

bin/migrate auth                      apply pending migrations (URL from AUTH_DATABASE_URL)
bin/migrate auth --dry-run            list pending migrations, change nothing
bin/migrate experiment status         show applied and pending migrations
bin/migrate export-schema [--check]   write tests/schemas/<database>.sql for the test harness
"""

import argparse
import asyncio
import os
import sys
from pathlib import Path

import asyncpg

from backend_common.migrations import (
    MigrationError,
    applied_migrations,
    discover,
    export_schema,
    migrate,
    pending_migrations,
)
from backend_common.paths import MIGRATIONS_ROOT, PROJECT_ROOT

SCHEMAS_ROOT = PROJECT_ROOT / "tests" / "schemas"


def databases() -> list[str]:
    return sorted(p.name for p in MIGRATIONS_ROOT.iterdir() if p.is_dir())


def export_all(*, check: bool) -> int:
    stale = []
    SCHEMAS_ROOT.mkdir(parents=True, exist_ok=True)
    for database in databases():
        target = SCHEMAS_ROOT / f"{database}.sql"
        text = export_schema(MIGRATIONS_ROOT / database)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        if check:
            stale.append(str(target.relative_to(PROJECT_ROOT)))
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(PROJECT_ROOT)}")
    if stale:
        print(f"stale schema export: {', '.join(stale)}; run bin/migrate export-schema")
        return 1
    return 0


async def run(database: str, command: str, dsn: str, directory: Path, dry_run: bool) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        if command == "status":
            applied = await applied_migrations(conn)
            for row in applied:
                print(f"applied  {row.name}")
            for migration in pending_migrations(discover(directory), applied):
                print(f"pending  {migration.name}")
            return 0
        done = await migrate(
            conn,
            directory,
            dry_run=dry_run,
            on_applied=lambda m, ms: print(f"applied  {m.name} ({ms} ms)"),
        )
        if dry_run:
            for migration in done:
                print(f"pending  {migration.name}")
        if not done:
            print(f"{database}: nothing to apply")
        return 0
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bin/migrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("database", help="a folder of migrations/, or export-schema")
    parser.add_argument("command", nargs="?", default="up", choices=["up", "status"])
    parser.add_argument("--dsn", help="database URL (default: $<DATABASE>_DATABASE_URL)")
    parser.add_argument(
        "--dir", type=Path, help="migrations folder (default: migrations/<database>)"
    )
    parser.add_argument("--dry-run", action="store_true", help="list pending files only")
    parser.add_argument("--check", action="store_true", help="export-schema: fail if stale")
    args = parser.parse_args(argv)

    if args.database == "export-schema":
        return export_all(check=args.check)
    dsn = args.dsn or os.environ.get(f"{args.database.upper()}_DATABASE_URL")
    if not dsn:
        parser.error(f"give --dsn or set {args.database.upper()}_DATABASE_URL")
    directory = args.dir or MIGRATIONS_ROOT / args.database
    try:
        return asyncio.run(run(args.database, args.command, dsn, directory, args.dry_run))
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
