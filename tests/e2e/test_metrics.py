"""GET /metrics of the real processes: counters move as a scripted workload says (one worker and
two), the metrics port refuses addresses it was not told to serve, the gateway never hands the
metrics out, and every metric the dashboards and alert rules query is in a real scrape."""

import asyncio
import os
import signal
import socket
import sys
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_ingest_workers import insert_sensor, wait_ready
from tests.plugins.services import SERVICES, daemon_env
from tests.test_deploy import etp_metric_names

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain")
        return parse(await response.text())


def own_address() -> str | None:
    """An address of this machine that is not loopback (None when it has none): the route
    towards a documentation network, which sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.255", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


async def post_batch(base: str, token: str, body: object) -> int:
    # A connection of its own each, so the kernel can hand it to either worker.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/api/v1/telemetry", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        return response.status


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [1, 2])
async def test_ingest_counters_move_with_a_scripted_workload(
    workers, pgsql, get_free_port, database_url, jwt_keys_dir, tmp_path
):
    sensor_id, token = insert_sensor(pgsql)
    spec = SERVICES["telemetry_ingest"]
    port, metrics_port = get_free_port(), get_free_port()
    address = own_address()
    env = {
        **os.environ,
        **daemon_env(spec, {name: port for name in SERVICES}, database_url, jwt_keys_dir),
        "TELEMETRY_INGEST_WORKERS": str(workers),
        "TELEMETRY_INGEST_SPOOL_DIR": str(tmp_path),
        "TELEMETRY_INGEST_METRICS_PORT": str(metrics_port),
        "TELEMETRY_INGEST_METRICS_HOST": "0.0.0.0",
        # One worker serves this machine's other address too; two workers serve loopback only.
        "TELEMETRY_INGEST_METRICS_ALLOWED_NETWORKS": (
            f'["{address}/32"]' if address and workers == 1 else "[]"
        ),
    }
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", spec.module, env=env)
    base, metrics_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"{base}/ready", process)
        before = await scrape(metrics_url)
        start = datetime.now(UTC) - timedelta(minutes=1)

        def batch(n: int, readings: int = 3) -> dict:
            return {
                "sensor_id": str(sensor_id),
                "batch_id": f"b{n}",
                "readings": [
                    {"timestamp": (start + timedelta(seconds=n, milliseconds=i)).isoformat(),
                     "raw_value": i}
                    for i in range(readings)
                ],
            }  # fmt: skip

        stored = await asyncio.gather(*(post_batch(base, token, batch(n)) for n in range(5)))
        again = await asyncio.gather(*(post_batch(base, token, batch(0)) for _ in range(2)))
        refused = await asyncio.gather(
            *(post_batch(base, token, batch(10 + n, readings=0)) for n in range(3))
        )
        forged = f"etps_{uuid.uuid4().hex}_{'x' * 43}"
        unknown = await asyncio.gather(*(post_batch(base, forged, batch(20)) for _ in range(2)))
        after = await scrape(metrics_url)

        assert (stored, again, refused, unknown) == ([202] * 5, [202] * 2, [422] * 3, [401] * 2)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        batches = "etp_ingest_batches_total"
        assert moved(batches, outcome="stored", reason="") == 5
        assert moved(batches, outcome="duplicate", reason="") == 2
        assert moved(batches, outcome="refused", reason="validation_failed") == 3
        assert moved(batches, outcome="refused", reason="invalid_token") == 2
        assert moved(batches, outcome="spooled", reason="") == 0
        assert moved("etp_ingest_points_total", outcome="stored") == 15
        requests = {"route": "ingest_telemetry", "method": "POST"}
        assert moved("etp_http_requests_total", **requests, status="202") == 7
        assert moved("etp_http_requests_total", **requests, status="422") == 3
        assert moved("etp_http_requests_total", **requests, status="401") == 2
        assert moved("etp_http_request_duration_seconds_count", **requests) == 12
        assert value(after, "etp_spool_bytes") == 0
        # Sampled at the scrape: every worker's pool (10 connections at most each) is in it.
        assert value(after, "etp_db_pool_connections", state="max") == 10 * workers
        assert value(after, "etp_rollup_pending_ranges") >= 1

        if address is not None:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://{address}:{metrics_port}/metrics") as response,
            ):
                assert response.status == (200 if workers == 1 else 403)

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)  # the first worker stops the others
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_every_service_serves_its_metrics_on_its_own_port(daemons, daemon_metrics_ports,
                                                                 daemon_ports):  # fmt: skip
    wrong = await daemons["auth"].post(
        "/api/v1/auth/login", json={"username": f"nobody{uuid.uuid4().hex[:8]}", "password": "x"}
    )
    assert wrong.status == 401
    scraped = {
        name: await scrape(f"http://127.0.0.1:{port}/metrics")
        for name, port in daemon_metrics_ports.items()
    }

    for name, samples in scraped.items():
        assert value(samples, "etp_http_requests_total", route="ready", method="GET",
                     status="200") >= 1, name  # fmt: skip
    assert value(scraped["auth"], "etp_login_failures_total", reason="invalid_credentials") >= 1
    # The API's ports have no /metrics, and the gateway does not proxy one from upstream.
    async with aiohttp.ClientSession() as session:
        for name, port in daemon_ports.items():
            for path in ("/metrics", "/api/metrics", "/api/v1/metrics"):
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    body = await response.text()
                    assert response.status != 200 or "etp_http_requests_total" not in body, (
                        name,
                        path,
                    )
                    assert "# TYPE" not in body, (name, path)


async def test_every_metric_the_dashboards_and_alerts_query_is_in_a_real_scrape(
    daemons, daemon_metrics_ports
):
    await daemons["experiment"].get("/ready")
    names = set()
    for port in daemon_metrics_ports.values():
        names |= {name for name, _ in await scrape(f"http://127.0.0.1:{port}/metrics")}

    missing = etp_metric_names() - names
    assert not missing, f"queried but never scraped: {sorted(missing)}"
