"""Fixtures of the MLflow door's tests: the experiment service asking the real auth service
(in-process) about API keys, a person with a project and keys bound to it, and a way to run
MLflow's own (synchronous) client against the service in a thread."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from experiment_service.app import create_app
from tests.api_key_kit import Person, RealAuth

T = TypeVar("T")


@pytest.fixture
async def auth(service_app_client) -> RealAuth:
    return RealAuth(await service_app_client("auth"))


@pytest.fixture
async def client(pgsql, aiohttp_client, make_settings, auth):
    """On the real clock (MLflow's client stamps metrics with the time of day); roles kept a
    minute, as a deployment would, so a thousand calls are not a thousand role checks."""
    settings = make_settings("experiment", auth_url=auth.url, role_cache_ttl=60)
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def alice(auth) -> Person:
    return await auth.sign_up("alice")


@pytest.fixture
async def project(auth, alice) -> str:
    return await auth.project(alice)


@pytest.fixture
async def key(auth, alice, project) -> dict[str, Any]:
    """An editor key bound to the project: what MLFLOW_TRACKING_TOKEN holds."""
    return await auth.key(alice, project_id=project, role="editor")


@pytest.fixture
def through(auth, alice, key) -> Person:
    """Alice calling ETP's own API with that key."""
    return auth.through(alice, key)


@pytest.fixture
def mlflow_client(client, key, monkeypatch) -> Callable[[Callable[[], T]], Awaitable[T]]:
    """Runs `script` (MLflow client code) in a thread, tracking into the service under test with
    the key as MLFLOW_TRACKING_TOKEN; the loop goes on serving meanwhile."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(client.make_url("")).rstrip("/"))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", key["key"])
    # A refused request fails the test at once instead of being retried for minutes.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    # mlflow.set_experiment leaves its experiment here for the process: gone after the test.
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)

    async def run(script: Callable[[], T]) -> T:
        import mlflow

        try:
            return await asyncio.to_thread(script)
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.tracking.fluent._active_experiment_id = None

    return run
