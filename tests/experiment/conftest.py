"""Fixtures of the experiment-service tests: a client on a clock the test moves (the clock and
the project's members come from tests/plugins/people.py), an experiment and a run of the project,
and webhook receivers."""

import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from experiment_service.app import create_app
from telemetry_ingest_service.app import create_app as create_ingest_app
from tests.experiment.artifact_kit import (
    S3_BUCKET,
    LocalStorage,
    S3Server,
    S3Storage,
    Storage,
)
from tests.experiment.factories import create_experiment, create_run
from tests.experiment.webhook_kit import Receiver

# The helper modules of these tests assert too; rewritten, their failures show the values.
pytest.register_assert_rewrite(
    "tests.experiment.sensor_kit",
    "tests.experiment.profile_kit",
    "tests.experiment.run_sensor_kit",
    "tests.experiment.compare_kit",
)


@pytest.fixture
async def client(pgsql, aiohttp_client, make_settings, clock):
    return await aiohttp_client(create_app(make_settings("experiment"), clock=clock))


@pytest.fixture
async def ingest(pgsql, aiohttp_client, make_settings, clock):
    """Telemetry ingest on the same database and clock, for tests that need stored readings."""
    return await aiohttp_client(create_ingest_app(make_settings("telemetry_ingest"), clock=clock))


@pytest.fixture
async def experiment(client, owner, project_id):
    """An experiment of the project, made by its owner (some modules make theirs otherwise)."""
    return await create_experiment(client, owner, project_id)


@pytest.fixture
async def run(client, owner, experiment):
    """A draft run of that experiment (some modules make theirs otherwise)."""
    return await create_run(client, owner, experiment["id"])


@pytest.fixture
def mockserver_host(mockserver_info) -> str:
    """`host:port` of testsuite's mockserver, for the webhook allow-list."""
    return urlsplit(mockserver_info.base_url).netloc


@pytest.fixture
def make_hooks_client(pgsql, aiohttp_client, make_settings, clock, mockserver_host):
    """An experiment app whose dispatcher runs (polling every 50 ms) and may send webhooks to
    the mockserver; settings can be overridden."""

    async def make(**overrides: Any):
        values: dict[str, Any] = {
            "webhook_dispatcher_enabled": True,
            "webhook_allowed_hosts": (mockserver_host,),
            "webhook_poll_interval": 0.05,
            "webhook_timeout": 1.0,
            "webhook_lease_seconds": 5.0,
            "webhook_backoff_base": 10.0,
            **overrides,
        }
        return await aiohttp_client(create_app(make_settings("experiment", **values), clock=clock))

    return make


@pytest.fixture
async def hooks(make_hooks_client):
    return await make_hooks_client()


@pytest.fixture
def receiver(mockserver, mockserver_info):
    """Makes webhook receivers on the mockserver: `receiver()` or `receiver(answers=[500, 200])`."""

    def make(answers: list[Any] | None = None) -> Receiver:
        path = f"/hooks/{uuid.uuid4().hex}"
        hook = Receiver(mockserver, mockserver_info.url(path.lstrip("/")), list(answers or []))
        mockserver.handler(path)(hook.handle)
        return hook

    return make


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-speaking server (moto in server mode, on loopback) with the test bucket."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3Server(f"http://{host}:{port}")
        s3.client.create_bucket(Bucket=S3_BUCKET)
        yield s3
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> Storage:
    """Each object store the service can keep artifacts in: a folder, or S3 (a prefix of the
    test's own in the bucket)."""
    if request.param == "local":
        return LocalStorage(tmp_path / "artifacts")
    return S3Storage(request.getfixturevalue("s3_server"))


@pytest.fixture
def make_artifacts_client(pgsql, aiohttp_client, make_settings, clock, storage, mockserver_host):
    """An experiment app keeping artifacts in `storage`; settings can be overridden."""

    async def make(**overrides: Any):
        settings = make_settings(
            "experiment",
            **{"webhook_allowed_hosts": (mockserver_host,), **storage.settings, **overrides},
        )
        return await aiohttp_client(create_app(settings, clock=clock))

    return make


@pytest.fixture
def operator(auth_stub):
    """A user the experiment apps of `jobs_app` name as an operator (sees the background jobs)."""
    return auth_stub.user()


@pytest.fixture
def jobs_app(pgsql, aiohttp_client, make_settings, clock, operator):
    """Makes an experiment app whose jobs the test runs on its clock (`job_kit.run_jobs`; no
    runner loop), with `operator` as its operator; settings can be overridden."""

    async def make(**overrides: Any):
        settings = make_settings("experiment", operators=(operator.id,), **overrides)
        return await aiohttp_client(create_app(settings, clock=clock))

    return make
