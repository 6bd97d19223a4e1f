"""The shared metrics: requests by route name, the /metrics listener's access check, the pool's
gauges, rate-limit rejections. Real processes (several workers) are in tests/e2e/test_metrics.py."""

import asyncio
from ipaddress import ip_network
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import REGISTRY
from pydantic import ValidationError

from backend_common.db import create_pool
from backend_common.metrics import http_metrics_middleware, pool_sampler
from backend_common.metrics_server import allowed, metrics_app
from backend_common.ratelimit import TokenBuckets
from backend_common.settings import ServiceSettings
from gateway_service.settings import GatewaySettings


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_are_counted_by_route_name_not_by_path(aiohttp_client):
    async def get_run(request: web.Request) -> web.Response:
        if request.match_info["run_id"] == "broken":
            raise web.HTTPServiceUnavailable()
        return web.json_response({})

    app = web.Application(middlewares=[http_metrics_middleware])
    app.router.add_get("/api/v1/runs/{run_id}", get_run, name="get_run_probe")
    client = await aiohttp_client(app)
    before = {
        status: value("etp_http_requests_total", route="get_run_probe", method="GET", status=status)
        for status in ("200", "503")
    }
    unmatched = value("etp_http_requests_total", route="unmatched", method="GET", status="404")

    other = value("etp_http_requests_total", route="unmatched", method="other", status="405")

    for run_id in ("a1", "b2", "broken"):
        await client.get(f"/api/v1/runs/{run_id}")
    await client.get("/api/v1/nothing")
    for unusual in ("TRACE", "PROPFIND"):
        await client.request(unusual, "/api/v1/runs/a1")

    labels = {"route": "get_run_probe", "method": "GET"}
    assert value("etp_http_requests_total", **labels, status="200") == before["200"] + 2
    assert value("etp_http_requests_total", **labels, status="503") == before["503"] + 1
    assert value("etp_http_request_duration_seconds_count", **labels) >= 3
    assert value("etp_http_requests_total", route="unmatched", method="GET", status="404") == (
        unmatched + 1
    )
    assert value("etp_http_requests_total", route="unmatched", method="other", status="405") == (
        other + 2
    )
    paths = [
        sample.labels.get("route")
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if metric.name == "etp_http_requests"
    ]
    assert not any(route and route.startswith("/api/v1/runs/a1") for route in paths)


@pytest.mark.parametrize(
    ("peer", "networks", "answer"),
    [
        ("127.0.0.1", [], True),
        ("127.5.5.5", [], True),
        ("::1", [], True),
        ("::ffff:127.0.0.1", [], True),
        ("192.0.2.9", [], False),
        ("fd00::2", [], False),
        ("192.0.2.9", [ip_network("192.0.2.0/24")], True),
        ("::ffff:192.0.2.9", [ip_network("192.0.2.0/24")], True),
        ("198.51.100.1", [ip_network("192.0.2.0/24")], False),
        ("fd00::2", [ip_network("fd00::/64")], True),
        ("fe80::1%eth0", [], False),
        (None, [], False),
        ("not-an-address", [], False),
    ],
)
def test_metrics_are_for_loopback_and_allowed_networks_only(peer, networks, answer):
    assert allowed(peer, networks) is answer


async def scrape_as(peer: str, app: web.Application) -> web.Response:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda key, default=None: (
        (peer, 40000) if key == "peername" else default
    )
    # A header naming loopback is not believed: only the connection's peer counts.
    request = make_mocked_request(
        "GET",
        "/metrics",
        headers={"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"},
        app=app,
        transport=transport,
    )
    match = await app.router.resolve(request)
    return await match.handler(request)


async def test_metrics_listener_refuses_other_addresses_before_sampling():
    sampled = []
    settings = ServiceSettings(
        service_name="probe",
        port=0,
        metrics_allowed_networks=["10.1.0.0/16"],
    )
    app = metrics_app([lambda: sampled.append(True)], settings)

    refused = await scrape_as("192.0.2.9", app)
    assert refused.status == 403
    assert sampled == []

    for peer in ("127.0.0.1", "10.1.2.3"):
        answer = await scrape_as(peer, app)
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert b"etp_http_requests_total" in answer.body
    assert sampled == [True, True]


async def test_pool_gauges_count_connections_in_use_idle_and_waiting(scratch_database):
    pool = await create_pool(await scratch_database(), min_size=2, max_size=2)
    sample = pool_sampler(pool)
    try:
        first = await pool.acquire()
        second = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)

        sample()
        assert value("etp_db_pool_connections", state="in_use") == 2
        assert value("etp_db_pool_connections", state="idle") == 0
        assert value("etp_db_pool_connections", state="max") == 2
        assert value("etp_db_pool_waiting") == 1

        await pool.release(first)
        third = await waiter
        await pool.release(second)
        sample()
        assert value("etp_db_pool_connections", state="in_use") == 1
        assert value("etp_db_pool_connections", state="idle") == 1
        assert value("etp_db_pool_waiting") == 0
        await pool.release(third)
    finally:
        await pool.close()


def test_named_limits_count_their_refusals_only():
    buckets = TokenBuckets(rate=1.0, burst=2, name="probe_limit")
    before = value("etp_rate_limit_rejections_total", limit="probe_limit")

    decisions = [buckets.take("k", now=10.0).allowed for _ in range(5)]
    assert not buckets.peek("k", now=10.0).allowed
    buckets.take("k", now=10.0, refusing=False)  # spent by a failure: nothing refused

    assert decisions == [True, True, False, False, False]
    assert value("etp_rate_limit_rejections_total", limit="probe_limit") == before + 4


@pytest.mark.parametrize(("given", "port"), [("off", None), ("", None), ("0", 0), ("9101", 9101)])
def test_metrics_port_is_a_port_or_off(monkeypatch, given, port):
    monkeypatch.setenv("GATEWAY_METRICS_PORT", given)

    assert GatewaySettings().metrics_port == port


def test_metrics_port_out_of_range_is_refused(monkeypatch):
    monkeypatch.setenv("GATEWAY_METRICS_PORT", "70000")

    with pytest.raises(ValidationError, match="port must be between 0 and 65535"):
        GatewaySettings()
