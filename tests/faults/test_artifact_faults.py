"""Durability of artifact uploads under faults: the real experiment process
(`python -m experiment_service`) against the tests' own PostgreSQL cluster, with the auth service
on testsuite's mockserver, is SIGKILLed in the middle of a 200 MB upload. Once it is back, its
start-up sweep has left no half file and there is no row."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.faults.experiment_process import ExperimentProcess
from tests.faults.harness import Cluster
from tests.plugins.waiting import eventually

pytestmark = pytest.mark.faults

MiB = 1024 * 1024


@pytest.fixture
async def experiment_process(
    cluster: Cluster, auth_stub: Any, mockserver_info: Any, tmp_path: Path
) -> AsyncIterator[ExperimentProcess]:
    conn = await cluster.connect()
    try:
        await conn.execute(
            "TRUNCATE experiments, artifacts, artifact_usage, artifact_trash CASCADE"
        )
    finally:
        await conn.close()
    process = ExperimentProcess(
        cluster,
        mockserver_info.url("auth").rstrip("/"),
        tmp_path / "artifacts",
        tmp_path / "experiment.log",
    )
    yield process
    await process.stop()
    print(f"=== {process.log.name} (tail)\n{process.log_tail(120)}")


async def _json(response: aiohttp.ClientResponse, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def test_experiment_killed_mid_upload_leaves_no_row_and_no_file(
    cluster, experiment_process, auth_stub, project_id
):
    service = experiment_process
    editor = auth_stub.member(project_id, "editor")
    await service.start()
    async with aiohttp.ClientSession(headers=editor.headers) as session:
        experiment = await _json(
            await session.post(
                f"{service.url}/api/v1/experiments",
                json={"project_id": str(project_id), "name": "faults"},
            ),
            201,
        )
        run = await _json(
            await session.post(
                f"{service.url}/api/v1/experiments/{experiment['id']}/runs", json={"name": "r"}
            ),
            201,
        )
        artifacts = f"{service.url}/api/v1/runs/{run['id']}/artifacts"
        kept = await _json(await session.post(artifacts, data=b"kept", params={"name": "k"}), 201)

        half_sent = asyncio.Event()
        chunk = os.urandom(MiB)

        async def body() -> AsyncIterator[bytes]:
            for n in range(200):
                if n == 100:
                    half_sent.set()
                    await asyncio.sleep(3600)  # the process dies meanwhile
                yield chunk

        upload = asyncio.create_task(
            session.post(
                artifacts,
                data=body(),
                params={"name": "big.bin"},
                headers={"Content-Length": str(200 * MiB)},
            )
        )
        await asyncio.wait_for(half_sent.wait(), 60)
        pending = service.artifact_dir / "pending"
        await eventually(
            lambda: sum(path.stat().st_size for path in pending.iterdir()) >= 90 * MiB,
            within=60,
            what="about half of the upload written",
        )
        service.kill()
        upload.cancel()  # its body waits for ever: what a client that lost its server does
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await upload

    # The fault was exercised: a half file is there, and no row.
    assert [path.parent.name for path in service.files()].count("pending") == 1
    conn = await cluster.connect()
    try:
        assert await conn.fetchval("SELECT count(*) FROM artifacts WHERE name = 'big.bin'") == 0

        await service.start()

        await eventually(
            lambda: len(service.files()) == 1, within=15, what="the half file swept away"
        )
        assert [path.name for path in service.files()] == [kept["id"].replace("-", "")]
        rows = await conn.fetch("SELECT id::text, size FROM artifacts")
        assert [(row["id"], row["size"]) for row in rows] == [(kept["id"], 4)]
        assert await conn.fetchval("SELECT bytes FROM artifact_usage") == 4
    finally:
        await conn.close()
    async with aiohttp.ClientSession(headers=editor.headers) as session:
        after = await session.post(artifacts, data=b"after", params={"name": "after"})
        assert after.status == 201, await after.text()
