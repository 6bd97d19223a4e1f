"""Fixtures of the fault tests: a throwaway PostgreSQL cluster, sensors in it, the real ingest
process, a spool folder on a tiny filesystem. The machinery is in harness.py."""

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import Cluster, IngestProcess, Sensor, insert_sensors


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    with Cluster.throwaway() as cluster:
        yield cluster


@pytest.fixture
async def cluster(pg_cluster: Cluster) -> Cluster:
    """The throwaway cluster, running, with no telemetry stored yet."""
    pg_cluster.ensure_running()
    conn = await pg_cluster.connect()
    try:
        await conn.execute(
            "TRUNCATE telemetry_records, telemetry_batches, ingest_errors, sensor_tokens,"
            " sensor_projects, sensors CASCADE"
        )
    finally:
        await conn.close()
    return pg_cluster


@pytest.fixture
def make_sensors(cluster: Cluster):
    """Sensors of one project, written directly: sensors, sensor_projects and sensor_tokens rows."""

    async def make(count: int) -> list[Sensor]:
        return await insert_sensors(cluster, count)

    return make


@pytest.fixture
async def ingest_process(cluster: Cluster, tmp_path: Path) -> AsyncIterator[Any]:
    """Makes ingest processes (not started); stops whatever still runs at the end and shows the
    log's tail (pytest prints it for a failed test)."""
    made: list[IngestProcess] = []

    def make(spool_dir: Path | None = None, **settings: Any) -> IngestProcess:
        process = IngestProcess(
            cluster,
            spool_dir or tmp_path / "spool",
            tmp_path / f"ingest-{len(made)}.log",
            **settings,
        )
        made.append(process)
        return process

    yield make
    for process in made:
        await process.stop()
        print(f"=== {process.log.name} (tail)\n{process.log_tail(120)}")


@pytest.fixture
def tiny_spool_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 256 KiB tmpfs (a disk that fills up); unmounted at the end."""
    directory = tmp_path / "tiny-spool"
    directory.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {result.stderr.strip()}")
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], check=False)
