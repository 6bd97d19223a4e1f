"""The generated SDKs against the real processes: `make sdk` generates the TypeScript and C++
clients from openapi/public.yaml, `make sdk-build` compiles them with their smoke programs (tsc
with strict settings; cmake and g++), and each smoke program drives the gateway: register, log in,
create an API key, then with the key a project, experiment, run and sensor, a telemetry batch with
the sensor's token, and the history read back and checked. Needs Java 17, Node.js with npm,
cmake, g++ and libcpprest-dev (`.ci/run` installs what is missing)."""

import asyncio
import os
import sys

import pytest

from backend_common.paths import PROJECT_ROOT

# Generation, npm ci on a fresh clone and the C++ build of the whole client on 2 cores.
BUILD_TIMEOUT = 900
SMOKE_TIMEOUT = 120


async def run(*args: str, env: dict[str, str] | None = None) -> str:
    """Runs a program in the repository; its output, or an assertion error with it."""
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=PROJECT_ROOT,
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
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"{' '.join(args)} exited {process.returncode}:\n{text}"
    return text


@pytest.fixture(scope="session")
async def sdk_built() -> None:
    # The interpreter running the tests is the project's virtualenv.
    async with asyncio.timeout(BUILD_TIMEOUT):
        await run("make", "--no-print-directory", f"VENV={sys.prefix}", "sdk", "sdk-build")


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("language", "program"),
    [
        ("typescript", ["node", "build/sdk/typescript-smoke/smoke.mjs"]),
        ("c++", ["build/sdk/cpp-smoke/etp-sdk-smoke"]),
    ],
)
async def test_sdk_smoke_program_passes_against_the_gateway(
    sdk_built, daemons, daemon_ports, language, program
):
    gateway = f"http://127.0.0.1:{daemon_ports['gateway']}"

    async with asyncio.timeout(SMOKE_TIMEOUT):
        output = await run(*program, env={"ETP_URL": gateway})

    assert f"sdk smoke ({language}): OK against {gateway}" in output, output
    assert "3 readings read back" in output, output
