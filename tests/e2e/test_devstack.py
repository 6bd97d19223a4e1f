"""`make run`'s script: a fresh PostgreSQL and all four services, stopped cleanly by SIGINT."""

import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from backend_common.paths import PROJECT_ROOT

SERVICES = ["GATEWAY", "AUTH", "EXPERIMENT", "TELEMETRY_INGEST"]


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(command)
    return found


@pytest.fixture
def state_dir():
    # Not under pytest's tmp_path: as root, the postgres user must be able to enter it.
    path = Path(tempfile.mkdtemp(prefix="etp-devstack-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def test_devstack_starts_everything_and_stops_on_sigint(state_dir, get_free_port):
    ports = {name: get_free_port() for name in SERVICES}
    pg_port = get_free_port()
    env = {
        **os.environ,
        "ETP_STATE_DIR": str(state_dir),
        "ETP_PG_PORT": str(pg_port),
        **{f"{name}_PORT": str(port) for name, port in ports.items()},
    }
    stack = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "bin" / "devstack"), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        # devstack gives up by itself after its start-up timeout, which ends this loop too.
        for line in stack.stdout:
            lines.append(line)
            if "ETP is up" in line:
                break
        assert all(_ready(port) for port in ports.values()), "".join(lines)
        # Everything the stack keeps is under its state folder (two stacks never share a spool).
        assert (state_dir / "telemetry-spool" / "worker-0").is_dir()

        stack.send_signal(signal.SIGINT)
        output, _ = stack.communicate(timeout=60)
    finally:
        if stack.poll() is None:
            stack.kill()

    assert stack.returncode == 0, "".join(lines) + output
    assert _processes_mentioning(str(state_dir)) == []
    assert not any(_ready(port) for port in ports.values())
    assert not (state_dir / "postgres" / "data" / "postmaster.pid").exists()
