"""Fixtures shared by the experiment-service tests: a client and users with roles in a project."""

import uuid

import pytest


@pytest.fixture
async def client(service_app_client):
    return await service_app_client("experiment")


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
