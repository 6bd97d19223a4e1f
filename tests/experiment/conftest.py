"""Fixtures of the experiment-service tests: a client on a clock the test moves (the clock and
the project's members come from tests/plugins/people.py)."""

import pytest

from experiment_service.app import create_app


@pytest.fixture
async def client(pgsql, aiohttp_client, make_settings, clock):
    return await aiohttp_client(create_app(make_settings("experiment"), clock=clock))
