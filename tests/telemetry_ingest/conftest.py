"""Fixtures for telemetry-ingest tests: the ingest app and the experiment app (for sensors, runs
and profiles) on one database, both on a clock the test moves.

The apps ask for `pgsql` first, so the database's per-test cleanup comes after they stop (the
ingest app writes its last heartbeats when it stops)."""

import uuid

import pytest

from experiment_service.app import create_app as create_experiment_app
from telemetry_ingest_service.app import create_app as create_ingest_app
from tests.experiment.conftest import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def api(pgsql, aiohttp_client, make_settings, clock):
    """The experiment service: sensors, profiles, runs, capture sessions."""
    return await aiohttp_client(create_experiment_app(make_settings("experiment"), clock=clock))


@pytest.fixture
def ingest_settings(make_settings):
    return lambda **overrides: make_settings("telemetry_ingest", **overrides)


@pytest.fixture
async def ingest(pgsql, aiohttp_client, ingest_settings, clock):
    """The telemetry ingest service."""
    return await aiohttp_client(create_ingest_app(ingest_settings(), clock=clock))


@pytest.fixture
def project_id():
    return uuid.uuid4()


@pytest.fixture
def owner(auth_stub, project_id):
    return auth_stub.member(project_id, "owner")
