"""A project and its members (owner, editor, viewer) on the auth stub, and a clock that tests
move: what the experiment and telemetry tests share."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest


@dataclass
class FakeClock:
    """A service's time of day: starts at the real time and moves only when told."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return FakeClock()


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
