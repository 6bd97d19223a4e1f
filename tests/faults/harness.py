"""Fault tests: the real ingest process (`python -m telemetry_ingest_service`) against a throwaway
PostgreSQL cluster that the tests start, stop (`-m immediate`) and start again themselves, and
sensors that send batches and keep a ledger of what was acknowledged.

Every reading carries a test-unique id in its meta (`rid`); the ledger records the rids of every
batch that got a 2xx. After healing, `assert_stored_once` compares the ledger with what
telemetry_records holds: nothing acknowledged is missing, nothing is stored twice.
"""

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from backend_common import sensor_tokens
from tests.plugins.service_process import REPO_ROOT, ServiceProcess

SCHEMA = REPO_ROOT / "tests" / "schemas" / "experiment.sql"
PG_USER = "etp"
SEGMENT_SUFFIX = ".spool"
# Short client timeouts: a device gives up on a slow answer and resends the same batch_id.
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=5, sock_connect=1)
RETRY_PAUSE = 0.2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Cluster:
    """A PostgreSQL cluster of its own in a temporary folder (as root, its processes run as the
    `postgres` user), listening on localhost only with trust authentication."""

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0
        self.bindir = Path(
            os.environ.get("ETP_PG_BINDIR")
            or subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        # Under /tmp (not the root-only pytest folder): the postgres user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="etp-faults-pg-"))
        os.chmod(self.root, 0o755)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._frozen: list[int] = []
        if self.as_root:
            shutil.chown(self.root, "postgres")

    def url(self, database: str = "experiment") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _server_tool(self, name: str, *args: str, check: bool = True) -> str:
        command = [str(self.bindir / name), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, cwd="/", capture_output=True, text=True, start_new_session=True
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{name} failed ({result.returncode}): {result.stderr}\n{_tail(self.log)}"
            )
        return result.stdout

    def psql(self, *args: str, database: str = "experiment") -> None:
        subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                PG_USER,
                "-d",
                database,
                *args,
            ],
            check=True,
            capture_output=True,
        )

    @classmethod
    @contextlib.contextmanager
    def throwaway(cls) -> Iterator["Cluster"]:
        """A cluster created for the block and destroyed when it ends, however it ends."""
        cluster = cls()
        try:
            cluster.create()
            yield cluster
        finally:
            cluster.destroy()

    def create(self) -> None:
        self._server_tool(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            PG_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        self.start()
        self.psql("-c", "CREATE DATABASE experiment", database="postgres")
        self.psql("-f", str(SCHEMA))

    def start(self) -> None:
        # fsync=off: a killed server loses nothing the kernel holds; only a machine crash would.
        options = (
            f"-c port={self.port} -c listen_addresses=localhost -c unix_socket_directories='' "
            "-c fsync=off -c full_page_writes=off"
        )
        self._server_tool(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log),
            "-o", options,
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._server_tool("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.data))

    def running(self) -> bool:
        command = [str(self.bindir / "pg_ctl"), "status", "-D", str(self.data)]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, cwd="/").returncode == 0

    def _processes(self) -> list[int]:
        """The postmaster and its children."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        pids = [postmaster]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(entry.name))
        return pids

    def freeze(self) -> list[int]:
        """SIGSTOP to every process of the cluster: connections stay open, nothing answers."""
        self._frozen = self._processes()
        for pid in self._frozen:
            os.kill(pid, signal.SIGSTOP)
        return self._frozen

    def thaw(self) -> None:
        for pid in self._frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    def ensure_running(self) -> None:
        self.thaw()
        if not self.running():
            self.start()

    def destroy(self) -> None:
        self.thaw()
        if self.data.exists() and self.running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url())


@dataclass(frozen=True)
class Sensor:
    id: uuid.UUID
    token: str


class IngestProcess(ServiceProcess):
    """`python -m telemetry_ingest_service` on a fixed port and spool folder: started, killed
    and started again as the test says. Its output goes to one log across restarts."""

    def __init__(self, cluster: Cluster, spool_dir: Path, log: Path, **settings: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.spool_dir = spool_dir
        values = {
            "host": "127.0.0.1",
            "port": self.port,
            "database_url": cluster.url(),
            "spool_dir": spool_dir,
            "db_timeout": 1.0,
            "log_level": "info",
            "log_format": "console",
            "shutdown_timeout": 2.0,
            # Sensors here send a few batches a second at most; the limit is not under test.
            "sensor_rate": 1000,
            "sensor_burst": 1000,
            **settings,
        }
        super().__init__("telemetry_ingest_service", "TELEMETRY_INGEST_", log, values)

    async def start(self, within: float = 30.0) -> None:
        """Starts the process and waits until it answers /health (its start-up is done) and
        listens for notifications: the listener's first connect drops the sensor-token cache, so
        a batch sent before it would not leave its token cached for an outage that follows."""
        self.spawn()
        await self.wait_ready(within)
        await self.wait_listening(within)

    async def wait_ready(self, within: float = 30.0) -> None:
        await self.wait_answering(f"{self.url}/health", within)

    async def wait_listening(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            since_start = self.log.read_bytes().rpartition(b"--- start")[2]
            if b"listening" in since_start:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"ingest did not start listening in {within} s:\n{self.log_tail()}")

    async def health(self) -> int:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
            session.get(f"{self.url}/health") as response,
        ):
            return response.status

    def segments(self) -> list[Path]:
        """Spool segment files (in the spool folder or a worker's folder in it), oldest first."""
        return sorted(
            self.spool_dir.rglob(f"*{SEGMENT_SUFFIX}"), key=lambda p: (str(p.parent), int(p.stem))
        )


# --- Sending, and what was acknowledged --------------------------------------------------------


@dataclass
class Ledger:
    """What the sensors sent and which readings got a 2xx."""

    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    spooled_batches: int = 0
    given_up: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    _next_rid: int = 0

    def rids(self, count: int) -> list[str]:
        first = self._next_rid
        self._next_rid += count
        rids = [str(n) for n in range(first, first + count)]
        self.sent.update(rids)
        return rids


@dataclass
class Batch:
    sensor: Sensor
    batch_id: str
    rids: list[str]
    body: bytes


def make_batch(ledger: Ledger, sensor: Sensor, size: int) -> Batch:
    rids = ledger.rids(size)
    batch_id = f"fault-{uuid.uuid4().hex}"
    start = datetime.now(UTC) - timedelta(hours=1)
    body = orjson.dumps(
        {
            "sensor_id": str(sensor.id),
            "batch_id": batch_id,
            "readings": [
                {
                    "timestamp": (start + timedelta(milliseconds=int(rid))).isoformat(),
                    "raw_value": random.uniform(-5.0, 5.0),
                    "meta": {"rid": int(rid)},
                }
                for rid in rids
            ],
        }
    )
    return Batch(sensor, batch_id, rids, body)


# Answers after which a device sends the same batch again: the service (or the network) could
# not take it now.
RETRYABLE = frozenset({429, 500, 502, 503, 504})


async def send(
    session: aiohttp.ClientSession,
    url: str,
    batch: Batch,
    ledger: Ledger,
    *,
    until: float | None = None,
    tally: Counter[str] | None = None,
) -> int | str:
    """POSTs the batch; with `until` (a monotonic deadline) resends it, same batch_id, after a
    short pause whenever it was refused or the request failed. Returns the last outcome. Each
    attempt's outcome is counted in the ledger (and in `tally`, if given)."""
    headers = {"Authorization": f"Bearer {batch.sensor.token}", "Content-Type": "application/json"}

    def count(label: str) -> None:
        ledger.statuses[label] += 1
        if tally is not None:
            tally[label] += 1

    while True:
        outcome: int | str
        try:
            async with session.post(
                f"{url}/api/v1/telemetry", data=batch.body, headers=headers
            ) as response:
                outcome = response.status
                answer = await response.read()
                if 200 <= outcome < 300:
                    ledger.acked.update(batch.rids)
                    if orjson.loads(answer).get("spooled"):
                        ledger.spooled_batches += 1
                        count(f"{outcome} spooled")
                    else:
                        count(str(outcome))
                    return outcome
                problem = orjson.loads(answer) if answer.startswith(b"{") else {}
                count(f"{outcome} {problem.get('code', '')}".strip())
                if outcome not in RETRYABLE:
                    ledger.unexpected.append(f"{batch.batch_id}: {outcome} {answer[:300]!r}")
                    return outcome
                if outcome == 503 and "Retry-After" not in response.headers:
                    ledger.unexpected.append(f"{batch.batch_id}: 503 without Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = type(exc).__name__
            count(outcome)
        if until is None:
            return outcome
        if time.monotonic() >= until:
            ledger.given_up.append(batch.batch_id)
            return outcome
        await asyncio.sleep(RETRY_PAUSE)


def client_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=CLIENT_TIMEOUT)


# --- Healing and the set check -----------------------------------------------------------------


async def stored_rids(cluster: Cluster) -> list[str]:
    conn = await cluster.connect()
    try:
        rows = await conn.fetch("SELECT meta->>'rid' AS rid FROM telemetry_records")
    finally:
        await conn.close()
    return [row["rid"] for row in rows]


async def wait_drained(
    cluster: Cluster, ingest: IngestProcess, ledger: Ledger, within: float = 15.0
) -> None:
    """Polls until the spool folder holds no segment and every acknowledged reading is in the
    table, or the deadline passes (the set check then says what is missing)."""
    deadline = time.monotonic() + within
    conn = await cluster.connect()
    try:
        while time.monotonic() < deadline:
            stored = await conn.fetchval("SELECT count(*) FROM telemetry_records")
            if not ingest.segments() and stored >= len(ledger.acked):
                return
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def assert_stored_once(cluster: Cluster, ledger: Ledger) -> Counter[str]:
    """lost = acknowledged - stored and duplicated (a rid stored twice) must both be empty."""
    counts = Counter(await stored_rids(cluster))
    lost = ledger.acked - counts.keys()
    duplicated = {rid for rid, n in counts.items() if n > 1}
    assert not lost, (
        f"{len(lost)} of {len(ledger.acked)} acknowledged readings are not stored, e.g. rids "
        f"{sorted(lost, key=int)[:10]}; answers: {dict(ledger.statuses)}"
    )
    assert not duplicated, (
        f"{len(duplicated)} readings are stored more than once, e.g. rids "
        f"{sorted(duplicated, key=int)[:10]}"
    )
    assert counts.keys() <= ledger.sent
    return counts


async def insert_sensors(cluster: Cluster, count: int) -> list[Sensor]:
    """Sensors of one project, written directly: sensors, sensor_projects and sensor_tokens rows."""
    project_id, user_id = uuid.uuid4(), uuid.uuid4()
    sensors = []
    conn = await cluster.connect()
    try:
        for n in range(count):
            sensor_id = uuid.uuid4()
            minted = sensor_tokens.mint(sensor_id)
            await conn.execute(
                "INSERT INTO sensors (id, project_id, name, type, input_unit, display_unit,"
                " created_by) VALUES ($1, $2, $3, 'thermocouple', 'mV', 'degC', $4)",
                sensor_id,
                project_id,
                f"fault sensor {n}",
                user_id,
            )
            await conn.execute(
                "INSERT INTO sensor_projects (sensor_id, project_id, added_by) VALUES ($1, $2, $3)",
                sensor_id,
                project_id,
                user_id,
            )
            await conn.execute(
                "INSERT INTO sensor_tokens (token_hash, sensor_id, preview) VALUES ($1, $2, $3)",
                minted.digest,
                sensor_id,
                minted.preview,
            )
            sensors.append(Sensor(sensor_id, minted.token))
    finally:
        await conn.close()
    return sensors


def plan_batches(
    ledger: Ledger, sensor: Sensor, readings: int, rng: random.Random, low: int, high: int
) -> list[Batch]:
    """`readings` readings of one sensor, cut into batches of `low` to `high`."""
    batches = []
    while readings > 0:
        size = min(readings, rng.randint(low, high))
        batches.append(make_batch(ledger, sensor, size))
        readings -= size
    return batches


async def run_device(
    session: aiohttp.ClientSession,
    ingest: IngestProcess,
    batches: list[Batch],
    ledger: Ledger,
    *,
    pace: float,
    until: float,
) -> None:
    """One device: its batches in order, each resent until acknowledged, `pace` seconds apart."""
    for batch in batches:
        await send(session, ingest.url, batch, ledger, until=until)
        await asyncio.sleep(pace)
