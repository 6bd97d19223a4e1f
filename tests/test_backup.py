"""bin/backup: a stack with data is dumped (pg_dump, one archive per database), restored into
fresh databases of the test cluster, and services started on the restored databases answer with
the same project, runs, sensors and readings (docs/operations.md, "Backups")."""

import asyncio
import os
import subprocess
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from auth_service.app import create_app as create_auth_app
from backend_common.paths import PROJECT_ROOT
from experiment_service.app import create_app as create_experiment_app
from telemetry_ingest_service.app import create_app as create_ingest_app
from tests.experiment.factories import create_experiment, expect
from tests.telemetry_ingest.ingest_api import (
    accepted,
    batch,
    bound_run,
    create_sensor,
    linear,
    readings_at,
)

BACKUP = PROJECT_ROOT / "bin" / "backup"
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def restored_names(database_url):
    """Names for the restored databases, dropped after the test."""
    names = {"auth": f"restored_auth_{uuid.uuid4().hex[:8]}"}
    names["experiment"] = names["auth"].replace("auth", "experiment")
    yield names
    conn = await asyncpg.connect(database_url("postgres"))
    try:
        for name in names.values():
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def libpq_env(database_url) -> dict[str, str]:
    """libpq's variables naming the test cluster, and its server's tools first on PATH."""
    url = urlsplit(database_url("postgres"))
    params = {k: v[-1] for k, v in parse_qs(url.query).items()}
    return {
        **os.environ,
        "PATH": f"{os.environ['ETP_PG_BINDIR']}:{os.environ['PATH']}",
        "PGHOST": url.hostname or params.get("host", "localhost"),
        "PGPORT": str(url.port or params.get("port", 5432)),
        "PGUSER": url.username or params.get("user", ""),
        "PGPASSWORD": url.password or params.get("password", ""),
    }


def backup(database_url, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BACKUP), *args],
        env=libpq_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )


def backup_ok(database_url, *args: str) -> str:
    """Runs bin/backup against the test cluster; it must succeed."""
    result = backup(database_url, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def snapshot(auth, experiment, ingest, login, owner, experiment_id, sensor_id):
    """What the API answers about the data: the caller's projects, the runs, the sensor, and its
    readings."""
    tokens = await expect(await auth.post("/api/v1/auth/login", json=login), 200)
    user = {"Authorization": f"Bearer {tokens['access_token']}"}
    projects = await expect(await auth.get("/api/v1/projects", headers=user), 200)
    runs = await expect(
        await experiment.get(
            "/api/v1/runs", params={"experiment_id": str(experiment_id)}, headers=owner.headers
        ),
        200,
    )
    sensor = await expect(
        await experiment.get(f"/api/v1/sensors/{sensor_id}", headers=owner.headers), 200
    )
    readings = await expect(
        await ingest.get(
            "/api/v1/telemetry",
            params={"sensor_id": str(sensor_id), "limit": "1000"},
            headers=owner.headers,
        ),
        200,
    )
    return {
        "projects": [(p["id"], p["name"]) for p in projects["items"]],
        "runs": runs["items"],
        "sensor": {k: v for k, v in sensor.items() if k != "last_heartbeat"},
        "readings": readings["items"],
    }


async def test_a_restored_backup_serves_the_same_runs_sensors_and_readings(
    pgsql, aiohttp_client, make_settings, auth_stub, clock, database_url, restored_names, tmp_path
):
    def apps(auth_db: str, experiment_db: str):
        return (
            create_auth_app(make_settings("auth", database_url=database_url(auth_db))),
            create_experiment_app(
                make_settings("experiment", database_url=database_url(experiment_db)), clock=clock
            ),
            create_ingest_app(
                make_settings("telemetry_ingest", database_url=database_url(experiment_db)),
                clock=clock,
            ),
        )

    auth, experiment, ingest = [await aiohttp_client(app) for app in apps("auth", "experiment")]
    login = {"username": "curie", "password": PASSWORD}
    await expect(
        await auth.post("/api/v1/auth/register", json={**login, "email": "curie@example.org"}),
        201,
    )
    tokens = await expect(await auth.post("/api/v1/auth/login", json=login), 200)
    project = await expect(
        await auth.post(
            "/api/v1/projects",
            json={"name": "radium"},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        ),
        201,
    )
    owner = auth_stub.member(uuid.UUID(project["id"]), "owner")
    sensor = await create_sensor(experiment, owner, project["id"], profile=linear(a=2.0, b=1.0))
    exp = await create_experiment(experiment, owner, project["id"])
    await bound_run(experiment, owner, exp, sensor)
    await bound_run(experiment, owner, exp, sensor, status="succeeded")
    start = clock.now + timedelta(seconds=1)
    clock.advance(60)
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(start, 1.0, 2.5, 4.0)))
    await accepted(
        ingest, sensor["token"], batch(sensor, readings_at(start + timedelta(seconds=10), 7.0))
    )

    before = await snapshot(auth, experiment, ingest, login, owner, exp["id"], sensor["id"])
    assert len(before["runs"]) == 2
    assert [r["raw_value"] for r in before["readings"]] == [1.0, 2.5, 4.0, 7.0]

    backup_ok(database_url, "dump", str(tmp_path), "auth", "experiment")
    assert {p.name for p in tmp_path.iterdir()} == {"auth.dump", "experiment.dump"}
    backup_ok(
        database_url,
        "restore",
        str(tmp_path),
        f"auth={restored_names['auth']}",
        f"experiment={restored_names['experiment']}",
    )
    for client in (auth, experiment, ingest):
        await client.close()
    # The originals are gone: what answers now can only come from the restored databases.
    await asyncio.to_thread(
        pgsql["experiment"].cursor().execute, "TRUNCATE telemetry_records, runs CASCADE"
    )

    restored = [
        await aiohttp_client(app)
        for app in apps(restored_names["auth"], restored_names["experiment"])
    ]
    after = await snapshot(*restored, login, owner, exp["id"], sensor["id"])

    assert after == before


async def test_a_restore_never_overwrites_an_existing_database(database_url, pgsql, tmp_path):
    backup_ok(database_url, "dump", str(tmp_path), "auth")

    result = backup(database_url, "restore", str(tmp_path), "auth")

    assert result.returncode != 0
    assert "database auth exists" in result.stderr
