"""Telemetry ingest as several worker processes on one port (WORKERS=2, SO_REUSEPORT)."""

import asyncio
import os
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from backend_common import sensor_tokens
from telemetry_ingest_service.domain.spool import Spool
from tests.plugins.services import SERVICES, daemon_env


def insert_sensor(pgsql) -> tuple[uuid.UUID, str]:
    sensor_id, project_id, user_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    token = sensor_tokens.mint(sensor_id)
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO sensors (id, project_id, name, type, input_unit, display_unit, "
            "created_by) VALUES (%s, %s, 'probe', 'thermo', 'mV', 'K', %s)",
            (str(sensor_id), str(project_id), str(user_id)),
        )
        cursor.execute(
            "INSERT INTO sensor_projects (sensor_id, project_id, added_by) VALUES (%s, %s, %s)",
            (str(sensor_id), str(project_id), str(user_id)),
        )
        cursor.execute(
            "INSERT INTO sensor_tokens (token_hash, sensor_id, preview) VALUES (%s, %s, %s)",
            (token.digest, str(sensor_id), token.preview),
        )
    return sensor_id, token.token


async def wait_ready(session: aiohttp.ClientSession, url: str, process) -> None:
    for _ in range(200):
        if process.returncode is not None:
            raise AssertionError(f"the service exited with {process.returncode}")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never became ready")


@pytest.mark.e2e
async def test_two_workers_share_the_port_and_stop_together(
    pgsql, get_free_port, database_url, jwt_keys_dir, tmp_path
):
    sensor_id, token = insert_sensor(pgsql)
    spec = SERVICES["telemetry_ingest"]
    port = get_free_port()
    env = {
        **os.environ,
        **daemon_env(spec, {name: port for name in SERVICES}, database_url, jwt_keys_dir),
        "TELEMETRY_INGEST_WORKERS": "2",
        "TELEMETRY_INGEST_SPOOL_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", spec.module, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"{base}/ready", process)
            start = datetime.now(UTC) - timedelta(minutes=1)

            async def send(n: int) -> int:
                body = {
                    "sensor_id": str(sensor_id),
                    "batch_id": f"b{n}",
                    "readings": [{"timestamp": (start + timedelta(seconds=n)).isoformat(),
                                  "raw_value": n}],
                }  # fmt: skip
                # A connection of its own each, so the kernel can hand it to either worker.
                async with (
                    aiohttp.ClientSession() as own,
                    own.post(
                        f"{base}/api/v1/telemetry",
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                    ) as response,
                ):
                    return response.status

            statuses = await asyncio.gather(*(send(n) for n in range(40)))

        assert statuses == [202] * 40
        with pgsql["experiment"].cursor() as cursor:
            cursor.execute("SELECT count(*) FROM telemetry_records WHERE sensor_id = %s",
                           (str(sensor_id),))  # fmt: skip
            assert cursor.fetchone()[0] == 40
        # Each worker holds a spool folder of its own.
        for worker in (0, 1):
            with pytest.raises(RuntimeError, match="another process"):
                Spool(tmp_path / f"worker-{worker}", max_bytes=1).open()

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        # Both workers are gone: their folders can be taken.
        for worker in (0, 1):
            spool = Spool(tmp_path / f"worker-{worker}", max_bytes=1)
            spool.open()
            spool.close()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
