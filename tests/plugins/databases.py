import os
import uuid

import asyncpg
import pytest

# The TimescaleDB pass (make test-timescaledb): the test cluster preloads the extension
# (tests/pgsql_bin/pgwrap), so the schema the tests load makes telemetry a hypertable.
TIMESCALEDB_PASS = os.environ.get("ETP_TIMESCALEDB") == "1"
timescaledb_only = pytest.mark.skipif(
    not TIMESCALEDB_PASS, reason="TimescaleDB pass only (make test-timescaledb)"
)


@pytest.fixture(scope="session")
def database_url(pgsql_local):
    """URL of a database of the test cluster, by alias (`auth`, `experiment`, `postgres`)."""

    def url(alias: str) -> str:
        return pgsql_local["auth"].replace(dbname=alias).get_uri()

    return url


@pytest.fixture
async def scratch_database(pgsql, database_url):
    """Creates empty databases for a test and drops them after it."""
    created: list[str] = []

    async def create() -> str:
        name = f"scratch_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(database_url("postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return database_url(name)

    yield create
    conn = await asyncpg.connect(database_url("postgres"))
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
