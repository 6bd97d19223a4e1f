#!/usr/bin/env python3
"""Artifact upload and download throughput of a big file through the experiment service, beside
`cp` of the same file on the same disk, with the service's resident memory before, during and
after each transfer (it must stay flat: bytes are streamed, never held whole).

Needs nothing running: it starts a throwaway PostgreSQL cluster, a stand-in for the auth service
(JWKS and "owner" for every membership question) and the real experiment process
(`python -m experiment_service`, local artifact storage with fsync on, as by default), then

    .venv/bin/python bench/artifacts.py [--size-mib 1024] [--rounds 3] [--dir DIR]

writes a file of `--size-mib` MiB into `--dir` (default `.local/bench-artifacts`), copies it
with `cp` (and with `cp` + `sync` of the copy, since the service makes every upload durable
before answering), uploads it as the raw
body of POST /api/v1/runs/{id}/artifacts and downloads it from GET /api/v1/artifacts/{id}/content
into a file beside it, both with curl (a C client, so the bench's own Python stays out of the way
on a small box), checks the sha256, and prints MB/s (the best of `--rounds` rounds each: a
shared box is noisy) and RSS. For the ceiling of HTTP on this box, the same two curl commands
also go to a bare aiohttp process that drops the uploaded body (no hash, no file) and serves the
file with sendfile. The folder is removed at the end.
"""

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import wait_up

from tests.faults.experiment_process import ExperimentProcess
from tests.faults.harness import Cluster, free_port
from tests.tokens import SigningKey, jwks

MiB = 1024 * 1024


async def auth_stand_in(key: SigningKey) -> tuple[web.AppRunner, str]:
    """JWKS and a membership answer ("owner") for whoever asks."""
    routes = web.RouteTableDef()

    @routes.get("/.well-known/jwks.json")
    async def keys(request: web.Request) -> web.Response:
        return web.json_response(jwks(key))

    @routes.get("/api/v1/projects/{project_id}/membership")
    async def membership(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "project_id": request.match_info["project_id"],
                "user_id": str(uuid.UUID(int=1)),
                "role": "owner",
                "physical_only": False,
            }
        )

    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def write_file(path: Path, size: int) -> str:
    """`size` bytes that do not compress (a model's weights do not); their sha256."""
    digest = hashlib.sha256()
    block = os.urandom(64 * MiB)
    with path.open("wb") as out:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


async def timed_with_rss(
    service: ExperimentProcess, work: Callable[[], Awaitable[Any]]
) -> tuple[float, Any, int, float]:
    """Seconds `work` took, its result, the service's highest RSS meanwhile (sampled every
    50 ms) and the CPU seconds the service spent on it."""
    peak = service.rss_bytes()
    cpu = service.cpu_seconds()
    task = asyncio.ensure_future(work())
    started = time.perf_counter()
    while not task.done():
        peak = max(peak, service.rss_bytes())
        await asyncio.wait({task}, timeout=0.05)
    took = time.perf_counter() - started
    return took, task.result(), peak, service.cpu_seconds() - cpu


async def run_command(*command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {err.decode()}")
    return out.decode()


def serve_bare(port: int, path: str) -> None:
    """The ceiling: an upload received and dropped, a download sent by the kernel (sendfile)."""

    async def sink(request: web.Request) -> web.Response:
        size = 0
        while piece := await request.content.readany():
            size += len(piece)
        return web.json_response({"size": size})

    async def source(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    app = web.Application(client_max_size=0)
    app.router.add_post("/sink", sink)
    app.router.add_get("/file", source)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def bare_ceiling(source: Path, target: Path, rounds: int) -> tuple[float, float]:
    """The best seconds of an upload to and a download from the bare process."""
    port = free_port()
    bare = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-bare", str(port), str(source)
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_up(session, f"{base}/sink")
        up, down = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            await run_command("curl", "-sS", "--fail", "-T", str(source), "-X", "POST",
                              "-H", "Expect:", f"{base}/sink")  # fmt: skip
            up.append(time.perf_counter() - started)
        for _ in range(rounds):
            started = time.perf_counter()
            await run_command("curl", "-sS", "--fail", "-o", str(target), f"{base}/file")
            down.append(time.perf_counter() - started)
            await asyncio.to_thread(target.unlink)
        return min(up), min(down)
    finally:
        bare.terminate()
        await bare.wait()


def cp(source: Path, target: Path, *, sync: bool) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    if sync:
        subprocess.run(["sync", str(target)], check=True)
    took = time.perf_counter() - started
    target.unlink()
    return took


def workdir(parent: str) -> Path:
    os.makedirs(parent, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="bench-", dir=os.path.abspath(parent)))


def mb_s(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:8.0f} MB/s"


async def main(args: argparse.Namespace) -> None:
    # Its /metrics on a free port: the default (9002) is a running `make run`'s.
    os.environ.setdefault("EXPERIMENT_METRICS_PORT", "0")
    size = args.size_mib * MiB
    work = await asyncio.to_thread(workdir, args.dir)
    cluster = Cluster()
    key = SigningKey.generate(kid="bench-1")
    runner, auth_url = await auth_stand_in(key)
    service = ExperimentProcess(
        cluster,
        auth_url,
        work / "store",
        work / "experiment.log",
        log_level="warning",
        artifact_fsync=str(not args.no_fsync).lower(),
    )
    try:
        await asyncio.to_thread(cluster.create)
        await service.start()
        source = work / "source.bin"
        print(f"writing a {args.size_mib} MiB file in {work} ...")
        digest = await asyncio.to_thread(write_file, source, size)

        cp_plain = min(
            [await asyncio.to_thread(cp, source, work / "copy.bin", sync=False)
             for _ in range(args.rounds)]
        )  # fmt: skip
        cp_synced = min(
            [await asyncio.to_thread(cp, source, work / "copy.bin", sync=True)
             for _ in range(args.rounds)]
        )  # fmt: skip

        token = key.mint(str(uuid.uuid4()))
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            created = await session.post(
                f"{service.url}/api/v1/experiments",
                json={"project_id": str(uuid.uuid4()), "name": "bench"},
            )
            experiment = await created.json()
            made = await session.post(
                f"{service.url}/api/v1/experiments/{experiment['id']}/runs", json={"name": "b"}
            )
            run = await made.json()

        rss_before = service.rss_bytes()
        upload_url = f"{service.url}/api/v1/runs/{run['id']}/artifacts?name=weights.bin"
        uploads, up_peak, up_cpu = [], 0, []
        for _ in range(args.rounds):
            seconds, answer, peak, cpu = await timed_with_rss(
                service,
                lambda: run_command(
                    "curl", "-sS", "--fail-with-body", "-X", "POST", "-T", str(source),
                    "-H", "Content-Type: application/octet-stream",
                    "-H", "Expect:", "-H", f"Authorization: Bearer {token}", upload_url,
                ),
            )  # fmt: skip
            artifact = json.loads(answer)
            assert artifact["sha256"] == digest, artifact
            uploads.append(seconds)
            up_cpu.append(cpu)
            up_peak = max(up_peak, peak)
        rss_between = service.rss_bytes()

        target = work / "download.bin"
        down_url = f"{service.url}/api/v1/artifacts/{artifact['id']}/content"
        downloads, down_peak, down_cpu = [], 0, []
        for _ in range(args.rounds):
            seconds, _, peak, cpu = await timed_with_rss(
                service,
                lambda: run_command(
                    "curl", "-sS", "--fail", "-o", str(target),
                    "-H", f"Authorization: Bearer {token}", down_url,
                ),
            )  # fmt: skip
            assert await asyncio.to_thread(sha256_of, target) == digest
            await asyncio.to_thread(target.unlink)
            downloads.append(seconds)
            down_cpu.append(cpu)
            down_peak = max(down_peak, peak)
        rss_after = service.rss_bytes()
        up_seconds, down_seconds = min(uploads), min(downloads)
        bare_up, bare_down = await bare_ceiling(source, target, args.rounds)

        print(f"\n{args.size_mib} MiB, best of {args.rounds}, in {work} (one disk for all)")
        print(f"cp                      {cp_plain:6.2f} s {mb_s(size, cp_plain)}")
        print(f"cp + sync               {cp_synced:6.2f} s {mb_s(size, cp_synced)}")
        print(f"bare HTTP upload        {bare_up:6.2f} s {mb_s(size, bare_up)}   (dropped)")
        print(f"bare HTTP download      {bare_down:6.2f} s {mb_s(size, bare_down)}   (sendfile)")
        print(
            f"upload (POST, fsync'd)  {up_seconds:6.2f} s {mb_s(size, up_seconds)}"
            f"   {cp_plain / up_seconds:4.0%} of cp, {cp_synced / up_seconds:4.0%} of cp + sync,"
            f" {bare_up / up_seconds:4.0%} of bare"
        )
        print(
            f"download (GET)          {down_seconds:6.2f} s {mb_s(size, down_seconds)}"
            f"   {cp_plain / down_seconds:4.0%} of cp, {bare_down / down_seconds:4.0%} of bare"
        )
        print(
            f"upload rounds {', '.join(f'{s:.2f}' for s in uploads)} s;"
            f" download rounds {', '.join(f'{s:.2f}' for s in downloads)} s"
        )
        gib = size / 1024**3
        print(
            f"service CPU per GiB (all threads, user + system): upload"
            f" {min(up_cpu) / gib:.2f} s, download {min(down_cpu) / gib:.2f} s"
            f" (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
        print(
            f"service RSS: before {rss_before / MiB:.0f} MiB, peak during uploads"
            f" {up_peak / MiB:.0f} MiB, after them {rss_between / MiB:.0f} MiB, peak during"
            f" downloads {down_peak / MiB:.0f} MiB, after them {rss_after / MiB:.0f} MiB"
        )
    finally:
        await service.stop()
        await runner.cleanup()
        await asyncio.to_thread(cluster.destroy)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3, help="each transfer; the best counts")
    parser.add_argument("--dir", default=".local/bench-artifacts")
    parser.add_argument(
        "--no-fsync", action="store_true", help="the service without fsync (ARTIFACT_FSYNC=false)"
    )
    parser.add_argument("--serve-bare", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_bare:
        serve_bare(int(arguments.serve_bare[0]), arguments.serve_bare[1])
    else:
        asyncio.run(main(arguments))
