import shutil

import pytest

from backend_common.paths import MIGRATIONS_ROOT
from tests.problems import assert_problem


@pytest.fixture
def migrations_dir(tmp_path):
    """A copy of the experiment migrations, which the test database has applied."""
    directory = tmp_path / "experiment"
    shutil.copytree(MIGRATIONS_ROOT / "experiment", directory)
    return directory


async def test_ready_all_migrations_applied_is_200(service_app_client, migrations_dir):
    client = await service_app_client("experiment", migrations_dir=migrations_dir)

    response = await client.get("/ready")

    assert response.status == 200, await response.text()
    assert await response.json() == {"status": "ready"}


async def test_ready_unapplied_migration_is_503_pending(service_app_client, migrations_dir):
    next_version = len(list(migrations_dir.glob("*.sql"))) + 1
    pending = f"{next_version:04d}_add_widgets.sql"
    (migrations_dir / pending).write_text("CREATE TABLE widgets (id int);\n")
    client = await service_app_client("experiment", migrations_dir=migrations_dir)

    response = await client.get("/ready")

    body = await assert_problem(response, 503, "migrations_pending")
    assert pending in body["detail"]


async def test_ready_edited_migration_is_503_inconsistent(service_app_client, migrations_dir):
    baseline = next(migrations_dir.glob("0001_*.sql"))
    baseline.write_text(baseline.read_text() + "\n-- edited after it was applied\n")
    client = await service_app_client("experiment", migrations_dir=migrations_dir)

    response = await client.get("/ready")

    body = await assert_problem(response, 503, "migrations_inconsistent")
    assert baseline.name in body["detail"]


async def test_ready_database_unreachable_is_503(service_app_client, get_free_port):
    closed_port = get_free_port()
    client = await service_app_client(
        "experiment",
        database_url=f"postgresql://etp:s3cret@127.0.0.1:{closed_port}/experiment",
        db_pool_min_size=0,
    )

    response = await client.get("/ready")
    health = await client.get("/health")

    body = await assert_problem(response, 503, "database_unavailable")
    assert "s3cret" not in body["detail"]
    assert health.status == 200


async def test_ready_with_newer_migrations_applied_is_200_and_logged_once(
    service_app_client, migrations_dir, log_lines
):
    # This process is a release behind: the database has a migration it does not know.
    newest = sorted(migrations_dir.glob("*.sql"))[-1]
    newest.unlink()
    client = await service_app_client("experiment", migrations_dir=migrations_dir)

    for _ in range(2):
        response = await client.get("/ready")
        assert response.status == 200, await response.text()

    logged = [line for line in log_lines() if line["event"] == "newer_migrations_applied"]
    assert [line["names"] for line in logged] == [[newest.name]]


async def test_ready_with_a_known_migration_missing_is_still_503(
    service_app_client, migrations_dir
):
    missing = sorted(migrations_dir.glob("*.sql"))[-2]
    missing.unlink()
    client = await service_app_client("experiment", migrations_dir=migrations_dir)

    body = await assert_problem(await client.get("/ready"), 503, "migrations_inconsistent")
    assert f"migration {missing.name[:4]} is missing" in body["detail"]


async def test_an_older_release_applying_migrations_starts_on_a_newer_database(
    service_app_client, migrations_dir
):
    sorted(migrations_dir.glob("*.sql"))[-1].unlink()
    client = await service_app_client(
        "experiment", migrations_dir=migrations_dir, apply_migrations=True
    )

    assert (await client.get("/ready")).status == 200
