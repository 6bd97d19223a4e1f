"""The raw-value policy: a project set to `physical_only` shows its viewers physical values only.
They are refused `layer=raw` on every read route (403), and the physical layer comes to them
without raw_value; owners and editors of the project, and members of a project without the
policy that the sensor is shared into, still see raw values."""

import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.experiment.factories import expect, share_sensor
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import (
    READING_FIELDS,
    accepted,
    batch,
    create_sensor,
    readings_at,
)
from tests.telemetry_ingest.sse import query

SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
PHYSICAL_ONLY_FIELDS = [name for name in READING_FIELDS if name != "raw_value"]
# Each read route, with what it needs besides the sensor, range and layer.
ROUTES = {
    "history": ("/api/v1/telemetry", []),
    "aggregate": ("/api/v1/telemetry/aggregate", [("bucket", "1m")]),
    "aligned": ("/api/v1/telemetry/aligned", [("step", "1s")]),
    "export": ("/api/v1/telemetry/export", [("format", "json")]),
    "stream": ("/api/v1/telemetry/stream", []),
}


@pytest.fixture
def physical_only(auth_stub, project_id):
    auth_stub.physical_only.add(project_id)


def params_of(route: str, sensor: dict[str, Any], base, layer: str) -> tuple[str, list]:
    url, extra = ROUTES[route]
    scope = {} if route == "stream" else {"from": base - HOUR, "to": base + HOUR}
    params = [
        *query([sensor], layer=layer, **{k: v.isoformat() for k, v in scope.items()}),
        *extra,
    ]
    return url, params


async def send(ingest, sensor, base, *raws: float) -> None:
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(base, *raws)))


async def read_history(ingest, user, sensor, base, layer: str) -> list[dict[str, Any]]:
    url, params = params_of("history", sensor, base, layer)
    return (await expect(await ingest.get(url, params=params, headers=user.headers), 200))["items"]


@pytest.mark.parametrize("route", list(ROUTES))
async def test_viewer_is_refused_the_raw_layer(ingest, viewer, sensor, base, physical_only, route):
    await send(ingest, sensor, base, 1.0)
    url, params = params_of(route, sensor, base, "raw")

    response = await ingest.get(url, params=params, headers=viewer.headers)

    await assert_problem(response, 403, "raw_values_hidden")


@pytest.mark.parametrize("route", list(ROUTES))
async def test_viewer_reads_the_physical_layer_without_raw_values(
    ingest, viewer, sensor, base, physical_only, route
):
    await send(ingest, sensor, base, 1.0, 2.0)
    url, params = params_of(route, sensor, base, "physical")

    response = await ingest.get(url, params=params, headers=viewer.headers)

    assert response.status == 200, await response.text()
    if route == "stream":
        response.close()
        return
    body = await response.json()
    assert "raw_value" not in str(body)
    if route in ("history", "export"):
        items = body["items"] if route == "history" else body
        assert [list(item) for item in items] == [PHYSICAL_ONLY_FIELDS] * 2
        assert [item["physical_value"] for item in items] == [3.0, 5.0]


async def test_viewer_gets_a_csv_export_without_the_raw_column(
    ingest, viewer, sensor, base, physical_only
):
    await send(ingest, sensor, base, 1.0)
    url, params = params_of("export", sensor, base, "physical")
    params = [*(p for p in params if p[0] != "format"), ("format", "csv")]

    response = await ingest.get(url, params=params, headers=viewer.headers)

    assert response.status == 200
    header, row = (await response.text()).splitlines()
    assert header.split(",") == PHYSICAL_ONLY_FIELDS
    assert "3.0" in row.split(",")


async def test_viewer_gets_live_events_without_raw_values(
    ingest, viewer, sensor, base, physical_only, streams
):
    stream = await streams(ingest, viewer, query([sensor], layer="physical"))

    await send(ingest, sensor, base, 1.5)
    [event] = await stream.events(1)

    assert [list(item) for item in event.readings] == [PHYSICAL_ONLY_FIELDS]
    assert event.readings[0]["physical_value"] == 4.0


@pytest.mark.parametrize("role", ["owner", "editor"])
async def test_owners_and_editors_still_see_raw_values(
    ingest, auth_stub, project_id, sensor, base, physical_only, role
):
    await send(ingest, sensor, base, 1.0)
    member = auth_stub.member(project_id, role)

    items = await read_history(ingest, member, sensor, base, "physical")
    raw_items = await read_history(ingest, member, sensor, base, "raw")

    assert [list(item) for item in items] == [READING_FIELDS]
    assert (items[0]["raw_value"], raw_items[0]["raw_value"]) == (1.0, 1.0)


async def test_without_the_policy_viewers_see_raw_values(ingest, viewer, sensor, base):
    await send(ingest, sensor, base, 1.0)

    items = await read_history(ingest, viewer, sensor, base, "raw")

    assert items[0]["raw_value"] == 1.0


async def test_the_policy_applies_once_the_role_cache_asks_again(
    ingest, auth_stub, project_id, viewer, sensor, base
):
    # The tests' role cache keeps nothing (role_cache_ttl=0).
    await send(ingest, sensor, base, 1.0)
    assert (await read_history(ingest, viewer, sensor, base, "raw"))[0]["raw_value"] == 1.0

    auth_stub.physical_only.add(project_id)

    url, params = params_of("history", sensor, base, "raw")
    response = await ingest.get(url, params=params, headers=viewer.headers)
    await assert_problem(response, 403, "raw_values_hidden")


async def test_a_project_without_the_policy_that_shares_the_sensor_shows_raw_values(
    api, ingest, auth_stub, owner, project_id, sensor, base, physical_only
):
    shared = await share_sensor(api, auth_stub, owner, sensor)
    home_viewer = auth_stub.member(project_id, "viewer")
    auth_stub.grant(home_viewer, shared, "viewer")
    await send(ingest, sensor, base, 1.0)

    items = await read_history(ingest, home_viewer, sensor, base, "raw")

    assert items[0]["raw_value"] == 1.0


async def test_one_sensor_under_the_policy_hides_raw_values_of_the_whole_answer(
    api, ingest, auth_stub, owner, project_id, sensors, base, physical_only
):
    other_project = uuid.uuid4()
    auth_stub.grant(owner, other_project, "owner")
    free = await create_sensor(api, owner, other_project)
    reader = auth_stub.member(project_id, "viewer")
    auth_stub.grant(reader, other_project, "viewer")
    await send(ingest, sensors[0], base, 1.0)
    await send(ingest, free, base, 2.0)
    url, params = params_of("history", sensors[0], base, "physical")
    params.append(("sensor_id", free["id"]))

    page = await expect(await ingest.get(url, params=params, headers=reader.headers), 200)

    assert len(page["items"]) == 2
    assert all("raw_value" not in item for item in page["items"])
