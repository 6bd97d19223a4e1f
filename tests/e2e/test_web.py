"""The portal in a real browser: `make web` builds the SPA, a gateway process serves it in front of
the real auth, experiment and telemetry processes (this harness's throwaway PostgreSQL), and
Playwright drives Debian's Chromium through the specs in web/e2e (one stack for the whole run;
each spec makes its own users and data). Screenshots of every screen land in build/web/screenshots.

Driven from pytest rather than a Playwright globalSetup: the harness already starts PostgreSQL
(as root too), the services on free ports with test settings, and stops them whatever happens.
Needs Node.js with npm and chromium (`.ci/run` installs what is missing)."""

import asyncio
import os
import shutil
import sys
import time

import pytest

from backend_common.paths import PROJECT_ROOT
from tests.plugins.services import SERVICES, daemon_env

# npm ci and the build on a fresh clone, on 2 cores.
BUILD_TIMEOUT = 900
SUITE_TIMEOUT = 600
CHROMIUM = os.environ.get("ETP_CHROMIUM", "/usr/bin/chromium")
WEB = PROJECT_ROOT / "web"
SCREENSHOTS = PROJECT_ROOT / "build" / "web" / "screenshots"


async def run(*args: str, cwd=PROJECT_ROOT, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled by a timeout
            process.kill()
            await process.wait()
    return process.returncode or 0, output.decode(errors="replace")


@pytest.fixture(scope="session")
async def web_built() -> None:
    async with asyncio.timeout(BUILD_TIMEOUT):
        code, output = await run("make", "--no-print-directory", f"VENV={sys.prefix}", "web")
    assert code == 0, f"make web exited {code}:\n{output}"


@pytest.fixture(scope="session")
async def portal_scope(
    web_built, create_daemon_scope, get_free_port, daemon_ports, database_url, jwt_keys_dir
):
    """A gateway serving web/dist, wired to the session's service processes. Cookies keep the
    production setting (Secure): Chromium sends them back to http://127.0.0.1, a secure context.
    The login limits are out of the way of the specs, which sign in many users from one address."""
    port = get_free_port()
    ports = {**daemon_ports, "gateway": port}
    scope = create_daemon_scope(
        args=[sys.executable, "-m", "gateway_service"],
        ping_url=f"http://127.0.0.1:{port}/ready",
        name="gateway_portal",
        env={
            **daemon_env(SERVICES["gateway"], ports, database_url, jwt_keys_dir),
            "GATEWAY_STATIC_DIR": str(WEB / "dist"),
            "GATEWAY_LOGIN_BURST_PER_ADDRESS": "1000",
            "GATEWAY_LOGIN_BURST_PER_USERNAME": "1000",
        },
    )
    async with scope as started:
        yield f"http://127.0.0.1:{port}", started


@pytest.fixture
async def portal_url(daemons, ensure_daemon_started, portal_scope) -> str:
    url, scope = portal_scope
    await ensure_daemon_started(scope)
    return url


@pytest.mark.e2e
async def test_portal_specs_pass_in_chromium(portal_url):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"no browser at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    started = time.monotonic()

    async with asyncio.timeout(SUITE_TIMEOUT):
        code, output = await run(
            str(PROJECT_ROOT / "node_modules" / ".bin" / "playwright"),
            "test",
            cwd=WEB,
            env={"ETP_WEB_URL": portal_url, "ETP_SCREENSHOTS": str(SCREENSHOTS)},
        )

    print(f"\nbrowser suite: {time.monotonic() - started:.1f} s\n{output}")
    assert code == 0, f"playwright test exited {code}:\n{output}"
    assert " passed" in output, output
    assert " failed" not in output, output
    assert (SCREENSHOTS / "run-capturing.png").is_file()
