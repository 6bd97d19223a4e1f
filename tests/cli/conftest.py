"""The `etp` command and the Python API against the real processes (tests/plugins/services.py's
`daemons`, one stack for the whole session): a person signs up through the gateway, makes a
project and an API key, and the tests drive `etp` as a subprocess with that key."""

import asyncio
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.waiting import eventually

ETP = str(Path(sys.executable).with_name("etp"))  # the console script of etp-client
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    user_id: str
    project_id: str
    key: str
    key_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The API key as a bearer (what the CLI sends)."""
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def bearer(self) -> dict[str, str]:
        """The access token of a password sign-in (what managing keys needs)."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    args: tuple[str, ...] = field(default=())

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error(self) -> dict[str, Any]:
        """The error object `--json` prints on stderr."""
        return json.loads(self.stderr.strip().splitlines()[-1])["error"]

    def __str__(self) -> str:
        return (
            f"etp {' '.join(self.args)} exited {self.code}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


async def expect(response: Any, status: int) -> Any:
    assert response.status == status, response.text
    return response.json()


@pytest.fixture
def gateway_url(daemon_ports) -> str:
    return f"http://127.0.0.1:{daemon_ports['gateway']}"


@pytest.fixture
async def account(daemons) -> Account:
    """A new person with a project and an API key for it. Made at the auth process directly (as
    tests/e2e does): through the gateway each sign-up and login would count against the
    credential routes' allowance of 127.0.0.1, which the whole session shares."""
    auth = daemons["auth"]
    name = f"cli{uuid.uuid4().hex[:10]}"
    user = await expect(
        await auth.post(
            "/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
        ),
        201,
    )
    login = {"username": name, "password": PASSWORD}
    tokens = await expect(await auth.post("/api/v1/auth/login", json=login), 200)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    project = await expect(
        await auth.post("/api/v1/projects", json={"name": "Wind tunnel"}, headers=bearer), 201
    )
    key = await expect(
        await auth.post("/api/v1/api-keys", json={"name": "ci"}, headers=bearer), 201
    )
    return Account(
        name, PASSWORD, user["id"], project["id"], key["key"], key["id"], tokens["access_token"]
    )


@pytest.fixture
def etp(gateway_url, account, tmp_path):
    """Runs `etp` with the account's key (ETP_URL, ETP_API_KEY; a config file of its own)."""

    async def run(
        *args: str,
        input: str | bytes | None = None,
        env: dict[str, str] | None = None,
        within: float = 60,
    ) -> Result:
        environment = {
            **os.environ,
            "ETP_URL": gateway_url,
            "ETP_API_KEY": account.key,
            "ETP_CONFIG": str(tmp_path / "etp-config.json"),
            "COLUMNS": "200",
            **(env or {}),
        }
        environment = {k: v for k, v in environment.items() if v != ""}
        process = await asyncio.create_subprocess_exec(
            ETP,
            *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            cwd=tmp_path,
        )
        data = input.encode() if isinstance(input, str) else input
        try:
            async with asyncio.timeout(within):
                out, err = await process.communicate(data)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode is not None
        return Result(process.returncode, out.decode(), err.decode(), args)

    return run


@pytest.fixture
def eventually_code(etp):
    """Runs `etp` until it exits with `code` (within a few seconds)."""

    async def wait(code: int, *args: str, env: dict[str, str] | None = None) -> Result:
        async def probe() -> Result | None:
            result = await etp(*args, env=env)
            return result if result.code == code else None

        return await eventually(probe, within=15, interval=0.5, what=f"etp exits {code}")

    return wait
