"""The seam between telemetry ingest and the experiment database, checked in the source.

The telemetry service owns the tables its own migrations create (readings, batches, the rollup,
the ingest error journal). Everything else in the experiment database belongs to the experiment
service, and telemetry reaches it only through the `telemetry_seam` schema (views and functions
that the experiment migrations define). These tests read the SQL of every telemetry repository
(its string constants, docstrings left out) and fail on a bare experiment table name.

The other way round, the experiment service reads telemetry (to compare runs) only through the
seam's functions too, and names no telemetry table but the ingest error journal, which it
shows as it is (docs/telemetry.md).
"""

import ast
import re
from pathlib import Path

import pytest

from backend_common.paths import MIGRATIONS_ROOT, PROJECT_ROOT

REPOSITORIES = sorted(
    (PROJECT_ROOT / "services/telemetry_ingest/telemetry_ingest_service/repositories").glob(
        "**/*.py"
    )
)
EXPERIMENT_REPOSITORIES = sorted(
    (PROJECT_ROOT / "services/experiment/experiment_service/repositories").glob("**/*.py")
)
# The migrations of the telemetry service's own tables; every other table is the experiment's.
TELEMETRY_MIGRATIONS = {"0004_telemetry.sql", "0005_telemetry_rollup.sql"}
# The one telemetry table the experiment service reads as it is: the ingest error journal.
JOURNAL = {"ingest_errors"}
SEAM = "telemetry_seam"

_CREATE_TABLE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
_CREATE_SEAM = re.compile(
    rf"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:VIEW|FUNCTION)\s+{SEAM}\.(\w+)", re.IGNORECASE
)
_SEAM_NAME = re.compile(rf"\b{SEAM}\.(\w+)")


def _migrations() -> list[Path]:
    return sorted((MIGRATIONS_ROOT / "experiment").glob("*.sql"))


def experiment_tables() -> set[str]:
    """Tables the experiment migrations create, but for the telemetry service's own."""
    return {
        name.lower()
        for path in _migrations()
        if path.name not in TELEMETRY_MIGRATIONS
        for name in _CREATE_TABLE.findall(path.read_text())
    }


def telemetry_tables() -> set[str]:
    """Tables the telemetry service's own migrations create."""
    return {
        name.lower()
        for path in _migrations()
        if path.name in TELEMETRY_MIGRATIONS
        for name in _CREATE_TABLE.findall(path.read_text())
    }


def seam_names() -> set[str]:
    return {name for path in _migrations() for name in _CREATE_SEAM.findall(path.read_text())}


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [tree, *ast.walk(tree)]
    holders = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in nodes
        if isinstance(node, holders)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def sql_strings(path: Path) -> list[str]:
    """Every string constant of the module (parts of f-strings too), docstrings left out."""
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    ]


def bare_names(sql: str, tables: set[str]) -> set[str]:
    """The tables of `tables` that `sql` names other than as a column of a qualified name."""
    words = re.findall(r'(?<![\w."])"?([A-Za-z_]\w*)', sql)
    return {word.lower() for word in words} & tables


def test_the_experiment_tables_are_found():
    tables = experiment_tables()

    assert {"runs", "capture_sessions", "sensors", "sensor_tokens", "run_sensors"} <= tables
    assert not {"telemetry_records", "telemetry_batches", "ingest_errors"} & tables


def test_the_telemetry_tables_are_found():
    tables = telemetry_tables()

    assert {"telemetry_records", "telemetry_batches", "telemetry_rollup"} <= tables
    assert tables >= JOURNAL
    assert not {"runs", "capture_sessions", "run_metrics"} & tables


@pytest.mark.parametrize("path", REPOSITORIES, ids=lambda path: path.name)
def test_repositories_name_no_experiment_table(path):
    tables = experiment_tables()

    named = {table for sql in sql_strings(path) for table in bare_names(sql, tables)}

    assert not named, f"{path.name} names experiment tables {sorted(named)}; use {SEAM}.*"


@pytest.mark.parametrize("path", REPOSITORIES, ids=lambda path: path.name)
def test_repositories_use_only_seam_names_the_migrations_define(path):
    used = {name for sql in sql_strings(path) for name in _SEAM_NAME.findall(sql)}

    assert used <= seam_names(), f"{path.name}: {sorted(used - seam_names())} undefined"


@pytest.mark.parametrize(
    "path", EXPERIMENT_REPOSITORIES, ids=lambda path: str(path.relative_to(path.parents[1]))
)
def test_experiment_repositories_name_no_telemetry_table(path):
    tables = telemetry_tables() - JOURNAL

    named = {table for sql in sql_strings(path) for table in bare_names(sql, tables)}

    assert not named, f"{path.name} names telemetry tables {sorted(named)}; use {SEAM}.*"


@pytest.mark.parametrize(
    "path", EXPERIMENT_REPOSITORIES, ids=lambda path: str(path.relative_to(path.parents[1]))
)
def test_experiment_repositories_use_only_seam_names_the_migrations_define(path):
    used = {name for sql in sql_strings(path) for name in _SEAM_NAME.findall(sql)}

    assert used <= seam_names(), f"{path.name}: {sorted(used - seam_names())} undefined"


def test_run_comparison_reads_telemetry_through_the_seam():
    comparison = next(path for path in EXPERIMENT_REPOSITORIES if path.name == "comparison.py")

    used = {name for sql in sql_strings(comparison) for name in _SEAM_NAME.findall(sql)}

    assert used == {"session_stats", "session_traces"}
    assert used <= seam_names()


def test_a_bare_table_is_caught_and_a_seam_name_is_not():
    tables = {"runs", "sensors"}

    assert bare_names("SELECT project_id FROM runs r JOIN sensors s ON true", tables) == tables
    assert bare_names('UPDATE "sensors" SET last_heartbeat = now()', tables) == {"sensors"}
    assert bare_names(f"SELECT id FROM {SEAM}.runs WHERE status = 'running'", tables) == set()
