"""Test harness: testsuite PostgreSQL with our schemas; services in-process and as daemons."""

import getpass
import os
import pathlib
import subprocess

import pytest
from hypothesis import settings
from testsuite.databases.pgsql import discover

TESTS_DIR = pathlib.Path(__file__).parent
SCHEMAS_DIR = TESTS_DIR / "schemas"

# PostgreSQL refuses to run as root and testsuite asks for a locale this machine may lack: the
# wrappers in pgsql_bin/ solve both. Set before testsuite's pytest_configure reads them.
if os.geteuid() == 0:
    os.environ.setdefault("TESTSUITE_ALLOW_ROOT", "1")
os.environ.setdefault("TESTSUITE_PGSQL_BINDIR", str(TESTS_DIR / "pgsql_bin"))
os.environ.setdefault(
    "ETP_PG_BINDIR",
    subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip(),
)

# Under `pytest -n N` (pytest-xdist) every worker gets its own PostgreSQL: a port, a data folder
# (testsuite keeps it under $USER) and an environment folder of its own.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, …
if XDIST_WORKER:
    os.environ["USER"] = os.environ["LOGNAME"] = f"{getpass.getuser()}-{XDIST_WORKER}"
    _base_port = int(os.environ.get("TESTSUITE_POSTGRESQL_PORT", "15433"))
    os.environ["TESTSUITE_POSTGRESQL_PORT"] = str(_base_port + 100 * (int(XDIST_WORKER[2:]) + 1))

# Every service process a test starts serves /metrics on a free port unless the test names one
# (the defaults, 9000-9003, would collide between test processes running at once).
for _prefix in ("AUTH", "EXPERIMENT", "TELEMETRY_INGEST", "GATEWAY"):
    os.environ.setdefault(f"{_prefix}_METRICS_PORT", "0")

pytest.register_assert_rewrite("tests.problems")

# CI replays the same examples every run (a landing never hangs on a lucky draw); local runs
# keep exploring new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

pytest_plugins = [
    "testsuite.pytest_plugin",
    "testsuite.databases.pgsql.pytest_plugin",
    "tests.plugins.databases",
    # Before services, which uses it, so that pytest imports it (asserts rewritten).
    "tests.plugins.spec_answers",
    "tests.plugins.services",
    "tests.plugins.auth_stub",
    "tests.plugins.people",
    "tests.plugins.roles",
    "tests.plugins.slow_readers",
    "tests.plugins.logs",
]


def pytest_configure(config):
    if XDIST_WORKER and config.option.env_dir:
        config.option.env_dir = pathlib.Path(f"{config.option.env_dir}-{XDIST_WORKER}")


@pytest.fixture(scope="session")
def pgsql_local(pgsql_local_create):
    databases = discover.find_schemas(None, [SCHEMAS_DIR])
    return pgsql_local_create(list(databases.values()))


class _CleanupExclusions(frozenset):
    """Tables the per-test TRUNCATE leaves alone: those named, and TimescaleDB's own schemas
    (its catalog and job table would lose the hypertable and its policies; chunks and compressed
    chunks go with their hypertable's TRUNCATE anyway)."""

    def __contains__(self, table: object) -> bool:
        if isinstance(table, str) and table.startswith(("_timescaledb", "timescaledb_")):
            return True
        return super().__contains__(table)


@pytest.fixture(scope="session")
def pgsql_cleanup_exclude_tables():
    # Services check it for /ready; it is loaded with the schema and never changes in tests.
    return _CleanupExclusions({"public.schema_migrations"})
