"""Test harness: testsuite PostgreSQL with our schemas; services in-process and as daemons."""

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
]


@pytest.fixture(scope="session")
def pgsql_local(pgsql_local_create):
    databases = discover.find_schemas(None, [SCHEMAS_DIR])
    return pgsql_local_create(list(databases.values()))


@pytest.fixture(scope="session")
def pgsql_cleanup_exclude_tables():
    # Services check it for /ready; it is loaded with the schema and never changes in tests.
    return frozenset({"public.schema_migrations"})
