"""API keys in telemetry ingest, verified by the real auth service (in-process): a script reads
the history with a key of its user; a key bound to another project finds nothing."""

import pytest

from experiment_service.app import create_app as create_experiment_app
from telemetry_ingest_service.app import create_app as create_ingest_app
from tests.api_key_kit import RealAuth
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import create_sensor, linear
from tests.telemetry_ingest.readings_api import HISTORY, SECOND, history, physical, query, send_at


@pytest.fixture
async def auth(service_app_client) -> RealAuth:
    return RealAuth(await service_app_client("auth"))


@pytest.fixture
async def api(pgsql, aiohttp_client, make_settings, clock, auth):
    settings = make_settings("experiment", auth_url=auth.url)
    return await aiohttp_client(create_experiment_app(settings, clock=clock))


@pytest.fixture
async def ingest(pgsql, aiohttp_client, make_settings, clock, auth):
    settings = make_settings("telemetry_ingest", auth_url=auth.url)
    return await aiohttp_client(create_ingest_app(settings, clock=clock))


async def test_a_viewer_key_reads_the_history(api, ingest, auth, clock):
    alice = await auth.sign_up("alice")
    project = await auth.project(alice)
    sensor = await create_sensor(api, alice, project, profile=linear(a=2.0, b=1.0))
    base = clock.now + SECOND
    clock.advance(60)
    await send_at(ingest, sensor, base, [(0, 1.5), (1, 2.5)])
    key = auth.through(alice, await auth.key(alice, project_id=project, role="viewer"))

    items = await history(ingest, key, query([sensor]))

    assert [item["physical_value"] for item in items] == [physical(1.5), physical(2.5)]
    assert {item["sensor_id"] for item in items} == {sensor["id"]}


async def test_a_key_bound_elsewhere_reads_nothing(api, ingest, auth, clock):
    alice = await auth.sign_up("alice")
    project, other = await auth.project(alice), await auth.project(alice)
    sensor = await create_sensor(api, alice, project, profile=linear(a=2.0))
    base = clock.now + SECOND
    clock.advance(60)
    await send_at(ingest, sensor, base, [(0, 1.5)])
    key = auth.through(alice, await auth.key(alice, project_id=other))
    stranger = await auth.sign_up("mallory")

    as_key = await ingest.get(HISTORY, params=query([sensor]), headers=key.headers)
    as_stranger = await ingest.get(HISTORY, params=query([sensor]), headers=stranger.headers)

    assert (as_key.status, await as_key.json()) == (
        as_stranger.status,
        await as_stranger.json() | {"request_id": (await as_key.json())["request_id"]},
    )
    assert as_key.status == 404
    assert len(await history(ingest, alice, query([sensor]))) == 1


async def test_a_forged_key_is_401(ingest):
    response = await ingest.get(
        HISTORY, params=[("sensor_id", "x")], headers={"Authorization": "Bearer etpk_forged"}
    )

    await assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="etp", error="invalid_token"'
