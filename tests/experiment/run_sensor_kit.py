"""Helpers of the run-sensor tests: binding requests and the bindings as stored."""

from tests.experiment.factories import audit_rows, expect


def run_sensors_url(run_id: str) -> str:
    return f"/api/v1/runs/{run_id}/sensors"


def run_sensor_url(run_id: str, sensor_id: str) -> str:
    return f"/api/v1/runs/{run_id}/sensors/{sensor_id}"


def bind_request(client, user, run_id, sensor_id, **headers):
    return client.post(
        run_sensors_url(run_id),
        json={"sensor_id": str(sensor_id)},
        headers={**user.headers, **headers},
    )


async def bind(client, user, run_id, sensor_id, *, expect_status=201):
    return await expect(await bind_request(client, user, run_id, sensor_id), expect_status)


def binding_rows(pgsql, run_id=None) -> list[tuple]:
    """(run_id, sensor_id, project_id, bound_by) of the bindings, of one run or of every run."""
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT run_id::text, sensor_id::text, project_id::text, bound_by::text"
            " FROM run_sensors WHERE %s::uuid IS NULL OR run_id = %s::uuid"
            " ORDER BY run_id, sensor_id",
            (run_id, run_id),
        )
        return cursor.fetchall()


def sensor_exists(pgsql, sensor_id) -> bool:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM sensors WHERE id = %s)", (str(sensor_id),))
        return cursor.fetchone()[0]


def sensor_project_ids(pgsql, sensor_id) -> set[str]:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT project_id::text FROM sensor_projects WHERE sensor_id = %s", (str(sensor_id),)
        )
        return {row[0] for row in cursor}


def actions_of(pgsql, entity_id) -> list[str]:
    return [row["action"] for row in audit_rows(pgsql, entity_id)]


async def all_pages(client, user, run_id, limit):
    items, cursor, pages = [], None, 0
    while True:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        response = await client.get(run_sensors_url(run_id), params=params, headers=user.headers)
        page = await expect(response, 200)
        pages += 1
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
