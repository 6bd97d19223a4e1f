"""Fixtures shared by the experiment-service tests: a client on a clock the test moves, and
users with roles in a project."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from experiment_service.app import create_app


@dataclass
class FakeClock:
    """The service's time of day: starts at the real time and moves only when told."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def client(pgsql, aiohttp_client, make_settings, clock):
    return await aiohttp_client(create_app(make_settings("experiment"), clock=clock))


@pytest.fixture
def project_id():
    return uuid.uuid4()


@pytest.fixture
def owner(auth_stub, project_id):
    return auth_stub.member(project_id, "owner")


@pytest.fixture
def editor(auth_stub, project_id):
    return auth_stub.member(project_id, "editor")


@pytest.fixture
def viewer(auth_stub, project_id):
    return auth_stub.member(project_id, "viewer")
