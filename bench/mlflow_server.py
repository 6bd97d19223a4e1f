"""An MLflow tracking server beside the stack, for the benches that measure ETP against it: its
store (SQLite, or a database in the stack's PostgreSQL), its runs, and its log-batch bodies.

It needs the bench extra (`pip install -e '.[dev,bench]'`, which brings `mlflow`)."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import aiohttp
import asyncpg
import orjson
from common import expect


async def postgres_store(dsn: str, name: str = "mlflow") -> str:
    """MLflow's store URI for database `name` in the stack's PostgreSQL, created if missing."""
    base, _, _ = dsn.rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg2://")


def sqlite_store(workdir: str) -> str:
    return f"sqlite:///{workdir}/mlflow.db"


def _stop(server: subprocess.Popen) -> None:
    """Stops the server and every process it started (its process group)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


def _start(store: str, port: int, workdir: str) -> subprocess.Popen:
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    with open(f"{workdir}/mlflow.log", "w") as log:
        return subprocess.Popen(
            [mlflow, "server", "--backend-store-uri", store, "--host", "127.0.0.1",
             "--port", str(port), "--artifacts-destination", f"{workdir}/artifacts"],
            cwd=workdir,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )  # fmt: skip


@contextlib.asynccontextmanager
async def mlflow_server(store: str | None, port: int) -> AsyncIterator[str]:
    """`mlflow server` with its defaults (4 workers) on `store` (SQLite in a fresh folder when
    None), up and answering; gives its URL. Its background job runners (scoring of GenAI
    traces, nothing to do with tracking) are off."""
    workdir = tempfile.mkdtemp(prefix="etp-bench-mlflow-")
    server = _start(store or sqlite_store(workdir), port, workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(900):  # a loaded box takes its time
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{url}/health") as response:
                        if response.status == 200:
                            break
                if server.poll() is not None:
                    raise SystemExit(f"mlflow server exited; see {workdir}/mlflow.log")
                await asyncio.sleep(0.2)
            else:
                raise SystemExit(f"mlflow server did not come up; see {workdir}/mlflow.log")
        yield url
    finally:
        _stop(server)


async def mlflow_runs(session: aiohttp.ClientSession, url: str, count: int) -> list[str]:
    """`count` runs in a new experiment."""
    api = f"{url}/api/2.0/mlflow"
    created = await expect(
        await session.post(
            f"{api}/experiments/create", json={"name": f"bench {uuid.uuid4().hex[:8]}"}
        ),
        200,
    )
    runs = []
    for _ in range(count):
        run = await expect(
            await session.post(
                f"{api}/runs/create",
                json={"experiment_id": created["experiment_id"], "start_time": 0},
            ),
            200,
        )
        runs.append(run["run"]["info"]["run_id"])
    return runs


class LogBatches:
    """log-batch bodies for one run: `size` points of the metrics `names` in turn, steps going on
    from batch to batch (as training code logs them), timestamps in milliseconds."""

    def __init__(self, run_id: str, size: int, names: Sequence[str]) -> None:
        self.run_id, self.size, self.names, self.base = run_id, size, names, 0
        self.now = int(time.time() * 1000)

    def body(self) -> bytes:
        width = len(self.names)
        metrics = [
            {"key": self.names[i % width], "value": 1.0 / (i + 1), "timestamp": self.now,
             "step": self.base + i // width}
            for i in range(self.size)
        ]  # fmt: skip
        self.base += self.size // width
        return orjson.dumps({"run_id": self.run_id, "metrics": metrics})


def log_batch_targets(url: str, runs: Sequence[str], size: int, names: Sequence[str]) -> list:
    """One (url, headers, bodies) per run, for `common.drive`."""
    endpoint = f"{url}/api/2.0/mlflow/runs/log-batch"
    headers = {"Content-Type": "application/json"}
    return [(endpoint, headers, LogBatches(run_id, size, names)) for run_id in runs]
