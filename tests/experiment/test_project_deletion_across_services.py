"""The real auth service announcing a deletion to the real experiment service (both in-process,
each on its own port, wired to each other): a sensor of a project deleted through the auth API
is revoked, and the experiment service verified the auth service's own service token against
the auth service's own JWKS."""

from typing import Any

from auth_service.app import create_app as create_auth_app
from experiment_service.app import create_app as create_experiment_app
from tests.experiment.deletion_kit import deletion_row
from tests.experiment.factories import expect
from tests.plugins.waiting import eventually


async def test_a_project_deleted_in_auth_is_recorded_by_the_experiment_service(
    pgsql, aiohttp_client, make_settings, get_free_port
):
    auth_port = get_free_port()
    auth_url = f"http://127.0.0.1:{auth_port}"
    experiment = await aiohttp_client(
        create_experiment_app(make_settings("experiment", auth_url=auth_url))
    )
    auth = await aiohttp_client(
        create_auth_app(
            make_settings(
                "auth",
                experiment_url=str(experiment.make_url("")).rstrip("/"),
                project_deletion_delivery_enabled=True,
                project_deletion_poll_interval=60,
            )
        ),
        server_kwargs={"port": auth_port},
    )

    async def call(client: Any, method: str, path: str, status: int, **kwargs: Any) -> Any:
        return await expect(await client.request(method, path, **kwargs), status)

    await call(
        auth,
        "POST",
        "/api/v1/auth/register",
        201,
        json={"username": "alice", "email": "alice@example.org", "password": "a long password"},
    )
    tokens = await call(
        auth,
        "POST",
        "/api/v1/auth/login",
        200,
        json={"username": "alice", "password": "a long password"},
    )
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    project = await call(auth, "POST", "/api/v1/projects", 201, json={"name": "p"}, headers=headers)
    sensor = await call(
        experiment,
        "POST",
        "/api/v1/sensors",
        201,
        headers=headers,
        json={
            "project_id": project["id"],
            "name": "probe",
            "type": "thermocouple",
            "input_unit": "mV",
            "display_unit": "degC",
        },
    )

    await call(auth, "DELETE", f"/api/v1/projects/{project['id']}", 204, headers=headers)
    await eventually(
        lambda: deletion_row(pgsql, project["id"]) is not None,
        what="the experiment service to record the deletion",
    )
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sensor_tokens WHERE sensor_id = %s", (sensor["id"],))
        assert cursor.fetchone()[0] == 0

    def acknowledged() -> bool:
        with pgsql["auth"].cursor() as cursor:
            cursor.execute(
                "SELECT acknowledged_at IS NOT NULL, attempts FROM project_deletion_outbox"
                " WHERE project_id = %s",
                (project["id"],),
            )
            return cursor.fetchone() == (True, 1)

    await eventually(acknowledged, what="the auth service to take the answer as an ack")
