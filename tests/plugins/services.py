"""Each service as an in-process app (fast API tests) or as a real process (end-to-end tests)."""

import contextlib
import ssl
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from auth_service.app import create_app as create_auth_app
from auth_service.settings import AuthSettings
from auth_service.signing import generate_key
from backend_common.paths import OPENAPI_ROOT
from experiment_service.app import create_app as create_experiment_app
from experiment_service.settings import ExperimentSettings
from gateway_service.app import create_app as create_gateway_app
from gateway_service.settings import GatewaySettings
from telemetry_ingest_service.app import create_app as create_telemetry_app
from telemetry_ingest_service.settings import TelemetryIngestSettings
from tests.plugins import spec_answers


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    env_prefix: str
    settings_class: type
    create_app: Any
    database: str | None


SERVICES = {
    "gateway": ServiceSpec(
        "gateway", "gateway_service", "GATEWAY_", GatewaySettings, create_gateway_app, None
    ),
    "auth": ServiceSpec("auth", "auth_service", "AUTH_", AuthSettings, create_auth_app, "auth"),
    "experiment": ServiceSpec(
        "experiment",
        "experiment_service",
        "EXPERIMENT_",
        ExperimentSettings,
        create_experiment_app,
        "experiment",
    ),
    "telemetry_ingest": ServiceSpec(
        "telemetry_ingest",
        "telemetry_ingest_service",
        "TELEMETRY_INGEST_",
        TelemetryIngestSettings,
        create_telemetry_app,
        "experiment",
    ),
}


@pytest.fixture(scope="session")
def jwt_keys_dir(tmp_path_factory):
    """The auth service's signing key folder, with one Ed25519 key."""
    directory = tmp_path_factory.mktemp("jwt-keys")
    generate_key(directory)
    return directory


# Settings every test instance of a service gets (bcrypt at its cheapest: tests do many logins).
# Role answers are not cached in tests, so a test may change a role between two requests. No
# webhook dispatcher runs unless a test starts one: the daemons live through the whole session
# and would claim other tests' deliveries. No job runner either (tests run jobs on their clock).
_TEST_SETTINGS = {
    # No deletion announcer either (a test of it starts one, or runs it on its clock).
    "auth": {"bcrypt_rounds": 4, "project_deletion_delivery_enabled": False},
    "experiment": {"role_cache_ttl": 0, "webhook_dispatcher_enabled": False, "jobs_enabled": False},
    "telemetry_ingest": {"role_cache_ttl": 0, "jobs_enabled": False},
}


@pytest.fixture(scope="session")
def make_settings(database_url, mockserver_info, jwt_keys_dir, tmp_path_factory):
    """Settings of a service for tests: its test database, upstreams on the mockserver, a
    spool folder of its own."""

    def make(name: str, **overrides: Any):
        spec = SERVICES[name]
        values: dict[str, Any] = {"port": 0, "log_level": "warning", **_TEST_SETTINGS.get(name, {})}
        if "spool_dir" in spec.settings_class.model_fields:
            values["spool_dir"] = tmp_path_factory.mktemp("spool")
        if "artifact_dir" in spec.settings_class.model_fields:
            values["artifact_dir"] = tmp_path_factory.mktemp("artifacts")
        if spec.database:
            values["database_url"] = database_url(spec.database)
        if "jwt_keys_dir" in spec.settings_class.model_fields:
            values["jwt_keys_dir"] = jwt_keys_dir
        for field, upstream in _UPSTREAMS.items():
            if field in spec.settings_class.model_fields:
                values[field] = mockserver_info.url(upstream).rstrip("/")
        values.update(overrides)
        return spec.settings_class(**values)

    return make


@pytest.fixture
def service_app_client(aiohttp_client, pgsql, make_settings):
    """An aiohttp test client on the in-process app of a service."""

    async def client(name: str, **overrides: Any):
        settings = make_settings(name, **overrides)
        return await aiohttp_client(SERVICES[name].create_app(settings))

    return client


_UPSTREAMS = {
    "auth_url": "auth",
    "experiment_url": "experiment",
    "telemetry_url": "telemetry_ingest",
}


def daemon_env(
    spec: ServiceSpec, ports: dict[str, int], database_url, jwt_keys_dir
) -> dict[str, str]:
    """Environment of a service process; `ports` holds every service's port, upstreams included."""
    env = {f"{spec.env_prefix}PORT": str(ports[spec.name]), f"{spec.env_prefix}LOG_LEVEL": "info"}
    for setting, value in _TEST_SETTINGS.get(spec.name, {}).items():
        env[f"{spec.env_prefix}{setting.upper()}"] = str(value)
    if spec.database:
        env[f"{spec.env_prefix}DATABASE_URL"] = database_url(spec.database)
    if "spool_dir" in spec.settings_class.model_fields:
        env[f"{spec.env_prefix}SPOOL_DIR"] = tempfile.mkdtemp(prefix="spool-")
    if "artifact_dir" in spec.settings_class.model_fields:
        env[f"{spec.env_prefix}ARTIFACT_DIR"] = tempfile.mkdtemp(prefix="artifacts-")
    if "jwt_keys_dir" in spec.settings_class.model_fields:
        env[f"{spec.env_prefix}JWT_KEYS_DIR"] = str(jwt_keys_dir)
    for field, upstream in _UPSTREAMS.items():
        if field in spec.settings_class.model_fields:
            env[f"{spec.env_prefix}{field.upper()}"] = f"http://127.0.0.1:{ports[upstream]}"
    return env


@pytest.fixture(scope="session")
def daemon_ports(get_free_port):
    return {name: get_free_port() for name in SERVICES}


@pytest.fixture(scope="session")
def daemon_metrics_ports(get_free_port):
    """Where each daemon serves GET /metrics (tests/e2e/test_metrics.py scrapes them)."""
    return {name: get_free_port() for name in SERVICES}


@pytest.fixture(scope="session")
async def daemon_scopes(
    create_daemon_scope, daemon_ports, daemon_metrics_ports, database_url, jwt_keys_dir
):
    """All four services as real processes (`python -m ...`), wired to each other."""
    async with contextlib.AsyncExitStack() as stack:
        scopes = {}
        for name, spec in SERVICES.items():
            scope = create_daemon_scope(
                args=[sys.executable, "-m", spec.module],
                ping_url=f"http://127.0.0.1:{daemon_ports[name]}/ready",
                name=name,
                env={
                    **daemon_env(spec, daemon_ports, database_url, jwt_keys_dir),
                    f"{spec.env_prefix}METRICS_PORT": str(daemon_metrics_ports[name]),
                },
            )
            scopes[name] = await stack.enter_async_context(scope)
        yield scopes


@pytest.fixture
async def daemons(pgsql, ensure_daemon_started, daemon_scopes, daemon_ports, create_service_client):
    """Starts the real processes (once per session) and gives an HTTP client for each, whose
    answers are checked against the service's document (the gateway's: the public one)."""
    clients = {}
    for name, scope in daemon_scopes.items():
        await ensure_daemon_started(scope)
        client = create_service_client(f"http://127.0.0.1:{daemon_ports[name]}")
        clients[name] = spec_answers.watch(client, *DAEMON_DOCUMENTS[name])
    return clients


# The gateway's public routes are checked against the public document; its probes and pages
# against its own.
DAEMON_DOCUMENTS = {
    "gateway": (OPENAPI_ROOT / "public.yaml", OPENAPI_ROOT / "gateway.yaml"),
    **{name: (OPENAPI_ROOT / f"{name}.yaml",) for name in SERVICES if name != "gateway"},
}


def https_health_check(url: str, ssl_context: ssl.SSLContext):
    """A create_daemon_scope `health_check` for a daemon serving HTTPS (testsuite's `ping_url`
    cannot be given a CA); a certificate error ends the wait at once instead of retrying."""

    async def health_check(session: aiohttp.ClientSession, process: Any) -> bool:
        try:
            async with session.get(
                url, ssl=ssl_context, timeout=aiohttp.ClientTimeout(total=1)
            ) as response:
                return response.status == 200
        except aiohttp.ClientSSLError:
            raise
        except (aiohttp.ClientConnectorError, TimeoutError):
            return False

    return health_check
