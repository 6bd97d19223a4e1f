"""Where readings are kept, and the retention setting: monthly partitions on plain PostgreSQL,
1-day chunks and a retention policy on TimescaleDB (the TimescaleDB pass)."""

from datetime import UTC, datetime, timedelta

import pytest

from telemetry_ingest_service.app import create_app as create_ingest_app
from tests.experiment.factories import expect
from tests.plugins.databases import TIMESCALEDB_PASS, timescaledb_only
from tests.telemetry_ingest.ingest_api import batch, bearer, create_sensor, reading

partitioned_only = pytest.mark.skipif(
    TIMESCALEDB_PASS,
    reason="monthly partitions are the plain-PostgreSQL storage; TimescaleDB's chunks and"
    " retention policy are checked below",
)


def table_of_each_reading(pgsql, sensor_id) -> dict[str, str]:
    """The partition (plain PostgreSQL) or chunk (TimescaleDB) each reading is kept in."""
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT meta->>'n', tableoid::regclass::text FROM telemetry_records"
            " WHERE sensor_id = %s",
            (sensor_id,),
        )
        return dict(cursor.fetchall())


def partitions(pgsql) -> set[str]:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'telemetry_records'::regclass"
        )
        return {name for (name,) in cursor.fetchall()}


def month_partition(instant: datetime) -> str:
    return f"telemetry_records_{instant:%Y_%m}"


@partitioned_only
async def test_readings_land_in_their_month_and_retention_drops_what_is_older(
    pgsql, aiohttp_client, api, ingest, owner, project_id, ingest_settings, clock
):
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT telemetry_storage()")
        assert cursor.fetchone()[0] == "partitioned"
        cursor.execute("SELECT telemetry_ensure_partitions(now() - interval '14 months', 2)")
    now = datetime.now(UTC)
    old = now - timedelta(days=425)
    recent = now - timedelta(days=2)
    ancient = datetime(1975, 5, 1, tzinfo=UTC)
    assert month_partition(old) in partitions(pgsql)
    sensor = await create_sensor(api, owner, project_id)
    readings = [
        reading(old, 1.0, meta={"n": "old"}),
        reading(recent, 2.0, meta={"n": "recent"}),
        reading(ancient, 3.0, meta={"n": "ancient"}),
    ]
    await expect(
        await ingest.post(
            "/api/v1/telemetry", json=batch(sensor, readings), headers=bearer(sensor["token"])
        ),
        202,
    )
    assert table_of_each_reading(pgsql, sensor["id"]) == {
        "old": month_partition(old),
        "recent": month_partition(recent),
        "ancient": "telemetry_records_default",
    }

    await aiohttp_client(create_ingest_app(ingest_settings(retention_days=365), clock=clock))

    assert table_of_each_reading(pgsql, sensor["id"]) == {"recent": month_partition(recent)}
    assert month_partition(old) not in partitions(pgsql)
    assert month_partition(now) in partitions(pgsql)
    assert month_partition(now + timedelta(days=62)) in partitions(pgsql)


@partitioned_only
async def test_without_retention_nothing_is_dropped(
    pgsql, aiohttp_client, api, ingest, owner, project_id, ingest_settings, clock
):
    sensor = await create_sensor(api, owner, project_id)
    ancient = reading(datetime(1975, 5, 1, tzinfo=UTC), 3.0, meta={"n": "ancient"})
    await expect(
        await ingest.post(
            "/api/v1/telemetry", json=batch(sensor, [ancient]), headers=bearer(sensor["token"])
        ),
        202,
    )

    await aiohttp_client(create_ingest_app(ingest_settings(retention_days=0), clock=clock))

    assert table_of_each_reading(pgsql, sensor["id"]) == {"ancient": "telemetry_records_default"}


def storage(pgsql) -> str:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT telemetry_storage()")
        return cursor.fetchone()[0]


def retention_policies(pgsql) -> list[tuple[int, dict]]:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT job_id, config FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_retention' AND hypertable_name = 'telemetry_records'"
        )
        return cursor.fetchall()


@timescaledb_only
async def test_on_timescaledb_readings_land_in_day_chunks_and_retention_drops_older_ones(
    pgsql, aiohttp_client, api, ingest, owner, project_id, ingest_settings, clock
):
    assert storage(pgsql) == "timescaledb"
    now = datetime.now(UTC)
    sensor = await create_sensor(api, owner, project_id)
    readings = [
        reading(now - timedelta(days=425), 1.0, meta={"n": "old"}),
        reading(now - timedelta(days=2), 2.0, meta={"n": "recent"}),
        reading(datetime(1975, 5, 1, tzinfo=UTC), 3.0, meta={"n": "ancient"}),
    ]
    await expect(
        await ingest.post(
            "/api/v1/telemetry", json=batch(sensor, readings), headers=bearer(sensor["token"])
        ),
        202,
    )
    chunks = table_of_each_reading(pgsql, sensor["id"])
    assert len(set(chunks.values())) == 3
    assert all(name.startswith("_timescaledb_internal.") for name in chunks.values())

    await aiohttp_client(create_ingest_app(ingest_settings(retention_days=365), clock=clock))

    [(job_id, config)] = retention_policies(pgsql)
    assert config["drop_after"] == "365 days"
    # The policy drops whole chunks in the background; run it now rather than wait for it.
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("CALL run_job(%s)", (job_id,))
    assert table_of_each_reading(pgsql, sensor["id"]) == {"recent": chunks["recent"]}

    await aiohttp_client(create_ingest_app(ingest_settings(retention_days=0), clock=clock))

    assert retention_policies(pgsql) == []
