"""Fixtures for telemetry-ingest tests: the ingest app and the experiment app (for sensors, runs
and profiles) on one database, both on a clock the test moves.

The apps ask for `pgsql` first, so the database's per-test cleanup comes after they stop (the
ingest app writes its last heartbeats when it stops)."""

from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from experiment_service.app import create_app as create_experiment_app
from telemetry_ingest_service.app import create_app as create_ingest_app
from tests.telemetry_ingest.ingest_api import create_sensor, linear
from tests.telemetry_ingest.sse import Block, EventStream, get_stream


@pytest.fixture
async def api(pgsql, aiohttp_client, make_settings, clock):
    """The experiment service: sensors, profiles, runs, capture sessions."""
    return await aiohttp_client(create_experiment_app(make_settings("experiment"), clock=clock))


@pytest.fixture
def ingest_settings(make_settings):
    return lambda **overrides: make_settings("telemetry_ingest", **overrides)


@pytest.fixture
def ingest_app(aiohttp_client, ingest_settings, clock):
    """Telemetry ingest with other settings."""

    async def start(**settings: Any):
        return await aiohttp_client(create_ingest_app(ingest_settings(**settings), clock=clock))

    return start


@pytest.fixture
async def ingest(pgsql, aiohttp_client, ingest_settings, clock):
    """The telemetry ingest service."""
    return await aiohttp_client(create_ingest_app(ingest_settings(), clock=clock))


@pytest.fixture
async def sensors(api, owner, project_id):
    """Two sensors of the project, both converting with linear(a=2, b=1) from the clock's now."""
    return [await create_sensor(api, owner, project_id, profile=linear(a=2.0, b=1.0)) for _ in "ab"]


@pytest.fixture
async def sensor(sensors):
    return sensors[0]


@pytest.fixture
def base(clock, sensors):
    """An instant after the profiles' start; the clock moved an hour past it (modules that need
    another instant have their own `base`)."""
    start = clock.now + timedelta(seconds=1)
    clock.advance(3600)
    return start


@pytest.fixture
def streams():
    """Opens streams that must be accepted; closes them after the test."""
    opened: list[aiohttp.ClientResponse] = []

    async def open_stream(client, user, params, **kwargs) -> EventStream:
        response = await get_stream(client, user, params, **kwargs)
        opened.append(response)
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        stream = EventStream(response)
        first = await stream.block()
        assert first == Block(fields={"retry": "2000"}), first
        return stream

    yield open_stream
    for response in opened:
        response.close()
