"""Fixtures of the fault tests: a throwaway PostgreSQL cluster, sensors in it, the real ingest
process, a spool folder on a tiny filesystem. The machinery is in harness.py."""

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from backend_common import sensor_tokens
from tests.faults.harness import Cluster, IngestProcess, Sensor


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.destroy()


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
        project_id, user_id = uuid.uuid4(), uuid.uuid4()
        sensors = []
        conn = await cluster.connect()
        try:
            for n in range(count):
                sensor_id = uuid.uuid4()
                minted = sensor_tokens.mint(sensor_id)
                await conn.execute(
                    "INSERT INTO sensors (id, project_id, name, type, input_unit, display_unit,"
                    " created_by) VALUES ($1, $2, $3, 'thermocouple', 'mV', 'degC', $4)",
                    sensor_id,
                    project_id,
                    f"fault sensor {n}",
                    user_id,
                )
                await conn.execute(
                    "INSERT INTO sensor_projects (sensor_id, project_id, added_by)"
                    " VALUES ($1, $2, $3)",
                    sensor_id,
                    project_id,
                    user_id,
                )
                await conn.execute(
                    "INSERT INTO sensor_tokens (token_hash, sensor_id, preview)"
                    " VALUES ($1, $2, $3)",
                    minted.digest,
                    sensor_id,
                    minted.preview,
                )
                sensors.append(Sensor(sensor_id, minted.token))
        finally:
            await conn.close()
        return sensors

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
