"""A sensor deleted between the role check and the insert of a new conversion profile: the
insert's foreign key fails, and the answer is the sensor's 404, not a 500."""

from experiment_service.domain import conversion_profiles
from tests.experiment.sensor_kit import create_sensor
from tests.problems import assert_problem


async def test_profile_of_a_sensor_deleted_after_the_role_check_is_404(
    client, pgsql, monkeypatch, owner, project_id
):
    sensor = await create_sensor(client, owner, project_id, name="probe")
    checked = conversion_profiles.sensor_access

    async def check_then_delete(*args, **kwargs):
        access = await checked(*args, **kwargs)
        with pgsql["experiment"].cursor() as cursor:
            cursor.execute("DELETE FROM sensors WHERE id = %s", (sensor["id"],))
        return access

    monkeypatch.setattr(conversion_profiles, "sensor_access", check_then_delete)

    response = await client.post(
        f"/api/v1/sensors/{sensor['id']}/conversion-profiles",
        json={"version": "v1", "kind": "linear", "payload": {"a": 2}},
        headers=owner.headers,
    )

    await assert_problem(response, 404, "sensor_not_found")
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM conversion_profiles")
        assert cursor.fetchone()[0] == 0
