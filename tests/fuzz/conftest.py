"""The fuzzer's own set of the four services as real processes, wired to each other like the
harness's `daemons`, and the two tenants it works with."""

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fuzz.crossing import Feeder
from tests.fuzz.fuzzer import Fuzzer
from tests.fuzz.tenants import Tenant, differences
from tests.plugins.services import SERVICES, daemon_env

# Per-address login limits would soon refuse the seeding of the next operation (each one signs
# a user up from 127.0.0.1); the fuzzer still meets the per-username ones.
_LIMITS = {
    "auth": {"AUTH_CREDENTIAL_BURST_PER_ADDRESS": "1000000"},
    "gateway": {"GATEWAY_LOGIN_BURST_PER_ADDRESS": "1000000"},
}
_EMPTIED = pytest.StashKey[bool]()
_TENANTS = pytest.StashKey["Tenants"]()


@pytest.fixture(scope="session")
def fuzz_ports(get_free_port):
    return {name: get_free_port() for name in SERVICES}


@pytest.fixture(scope="session")
def spa_dir(tmp_path_factory):
    """A built portal's shape, so the gateway serves its `/{tail}` route."""
    folder = tmp_path_factory.mktemp("spa")
    (folder / "index.html").write_text("<!doctype html><title>ETP</title>")
    (folder / "app.js").write_text("console.log('etp');")
    return folder


@pytest.fixture(scope="session")
async def fuzz_daemon_scopes(create_daemon_scope, fuzz_ports, database_url, jwt_keys_dir, spa_dir):
    settings = {**_LIMITS, "gateway": {**_LIMITS["gateway"], "GATEWAY_STATIC_DIR": str(spa_dir)}}
    async with contextlib.AsyncExitStack() as stack:
        scopes = {}
        for name, spec in SERVICES.items():
            env = daemon_env(spec, fuzz_ports, database_url, jwt_keys_dir)
            env[f"{spec.env_prefix}LOG_LEVEL"] = "warning"
            env.update(settings.get(name, {}))
            scope = create_daemon_scope(
                args=[sys.executable, "-m", spec.module],
                ping_url=f"http://127.0.0.1:{fuzz_ports[name]}/ready",
                name=f"fuzz_{name}",
                env=env,
            )
            scopes[name] = await stack.enter_async_context(scope)
        yield scopes


@pytest.fixture
def fuzz_databases(request):
    """The test databases, emptied before the first fuzzed operation only: each operation gets
    a tenant of its own, and emptying every database costs more than fuzzing an operation."""
    if not request.config.stash.get(_EMPTIED, False):
        request.getfixturevalue("pgsql")
        request.config.stash[_EMPTIED] = True


@pytest.fixture
async def fuzz_urls(fuzz_databases, ensure_daemon_started, fuzz_daemon_scopes, fuzz_ports):
    """Base URL of each service, its process started (once per session)."""
    for scope in fuzz_daemon_scopes.values():
        await ensure_daemon_started(scope)
    return {name: f"http://127.0.0.1:{port}" for name, port in fuzz_ports.items()}


@dataclass
class Tenants:
    """The fuzzer's tenant, kept while operations only read (a new one after each operation
    that may write, so every writing operation starts from the same world), and another one
    whose ids the fuzzer feeds to its calls, made once and checked after each operation
    against how it was made."""

    urls: dict[str, str]
    mine: Tenant | None = None
    other: Tenant | None = None
    baseline: dict[str, Any] = field(default_factory=dict)

    def fuzzer(self) -> Tenant:
        if self.mine is None or not self.mine.still_there(self.urls):
            self.mine = Tenant.sign_up(self.urls, "fuzzer")
        return self.mine

    def spend(self) -> None:
        self.mine = None

    def victim(self) -> Tenant:
        if self.other is None or not self.other.still_there(self.urls):
            self.other = Tenant.sign_up(self.urls, "other")
            self.baseline = self.other.snapshot(self.urls)
        return self.other

    def check_victim(self) -> None:
        assert self.other is not None
        changed = differences(self.baseline, self.other.snapshot(self.urls))
        assert not changed, f"the fuzzed operation changed another tenant: {changed}"


@pytest.fixture
def tenants(request, fuzz_urls) -> Iterator[Tenants]:
    pool = request.config.stash.get(_TENANTS, None)
    if pool is None:
        pool = request.config.stash[_TENANTS] = Tenants(fuzz_urls)
    # Made again if tests of another file emptied the databases since the last fuzzed operation
    # (on a pytest-xdist worker, the two fuzz files may have other files between them).
    pool.victim()
    yield pool
    pool.check_victim()


@pytest.fixture
def fuzzer(fuzz_urls, tenants) -> Iterator[Fuzzer]:
    me = tenants.fuzzer()
    fuzzer = Fuzzer(fuzz_urls, me, Feeder(me, tenants.victim()))
    yield fuzzer
    if fuzzer.wrote:
        tenants.spend()
