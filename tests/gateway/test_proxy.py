"""Forwarding /api/* to the service that owns the path, and what goes on and comes back."""

import asyncio
import hashlib
import os

import pytest
from aiohttp import web
from yarl import URL

from tests.gateway.conftest import EXPERIMENT, TELEMETRY
from tests.gateway.gateway_api import (
    access_token,
    log_in,
    own_origin,
    raw_url,
    unsafe_headers,
)
from tests.problems import assert_problem

BEARER = {"Authorization": f"Bearer {access_token()}"}


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/api/v1/auth/me", "/auth"),
        ("/api/v1/auth/register", "/auth"),
        ("/api/v1/projects", "/auth"),
        ("/api/v1/projects/p1/members", "/auth"),
        ("/api/v1/users", "/auth"),
        ("/api/v1/telemetry", TELEMETRY),
        ("/api/v1/telemetry/stream", TELEMETRY),
        ("/api/v1/experiments", EXPERIMENT),
        ("/api/v1/runs:batch-status", EXPERIMENT),
        ("/api/v1/sensors/s1/rotate-token", EXPERIMENT),
        ("/api/v2/anything", EXPERIMENT),
        ("/api/v1/authority", EXPERIMENT),
    ],
)
async def test_api_call_goes_to_service_owning_path(gateway, mockserver, path, prefix):
    @mockserver.json_handler(f"{prefix}{path}")
    def handler(request):
        return {"served_by": prefix}

    response = await gateway.get(path, headers=BEARER)

    assert response.status == 200, await response.text()
    assert await response.json() == {"served_by": prefix}
    assert handler.times_called == 1


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_api_call_forwards_method_query_and_body(gateway, mockserver, method):
    @mockserver.handler(f"{EXPERIMENT}/api/v1/runs/r1")
    def handler(request):
        return mockserver.make_response(json={"method": request.method})

    body = b'{"status": "finished"}' if method != "GET" else None
    response = await gateway.request(
        method,
        URL("/api/v1/runs/r1?tag=a&tag=b&q=x+y%26z&empty=", encoded=True),
        data=body,
        headers={**BEARER, "Content-Type": "application/json"},
    )

    assert response.status == 200, await response.text()
    forwarded = handler.next_call()["request"]
    assert forwarded.method == method
    assert forwarded.path_qs.endswith("/api/v1/runs/r1?tag=a&tag=b&q=x+y%26z&empty=")
    assert forwarded.get_data() == (body or b"")
    assert forwarded.headers["Content-Type"] == "application/json"


async def test_api_call_encoded_path_is_forwarded_unchanged(gateway, mockserver):
    # A decoded %2F or %3F would change the path, or start a query, at the service.
    @mockserver.handler(f"{EXPERIMENT}/api/v1/runs/", prefix=True)
    def handler(request):
        return mockserver.make_response(json={})

    response = await gateway.get(URL("/api/v1/runs/a%2Fb%3Fc=1", encoded=True), headers=BEARER)

    assert response.status == 200, await response.text()
    forwarded = handler.next_call()["request"]
    assert forwarded.path_qs == f"{EXPERIMENT}/api/v1/runs/a%2Fb%3Fc=1"


async def test_api_call_dot_segments_stay_below_service_base(gateway, mockserver):
    # The services' base URLs may carry a path (here the mockserver prefix): `..` must not
    # climb out of it to another service.
    @mockserver.handler("/auth/api/v1/auth/me")
    def other_service(request):
        return mockserver.make_response(json={"leaked": True})

    @mockserver.handler(f"{EXPERIMENT}/", prefix=True)
    def experiment(request):
        return mockserver.make_response(json={}, status=404)

    response = await gateway.session.get(
        raw_url(gateway, "/api/v1/experiments/../../../../auth/api/v1/auth/me"), headers=BEARER
    )

    assert other_service.times_called == 0
    assert response.status == 404


async def test_api_call_cookies_are_not_forwarded_but_turned_into_bearer(
    gateway, auth_service, mockserver
):
    csrf = await log_in(gateway)

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def handler(request):
        return {}

    await gateway.post("/api/v1/experiments", json={}, headers=unsafe_headers(gateway, csrf))

    forwarded = handler.next_call()["request"]
    assert "Cookie" not in forwarded.headers
    assert forwarded.headers["Authorization"] == (
        f"Bearer {auth_service.issued[0]['access_token']}"
    )
    assert forwarded.headers["X-CSRF-Token"] == csrf


async def test_api_call_given_request_id_is_forwarded_and_echoed(gateway, mockserver):
    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def handler(request):
        return {}

    response = await gateway.get(
        "/api/v1/experiments", headers={**BEARER, "X-Request-Id": "req-42.a:b"}
    )

    assert handler.next_call()["request"].headers["X-Request-Id"] == "req-42.a:b"
    assert response.headers["X-Request-Id"] == "req-42.a:b"


@pytest.mark.parametrize("given", [None, "bad id\twith tab", "x" * 129])
async def test_api_call_missing_or_bad_request_id_gets_generated_one(gateway, mockserver, given):
    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def handler(request):
        return {}

    headers = {**BEARER, **({"X-Request-Id": given} if given else {})}
    response = await gateway.get("/api/v1/experiments", headers=headers)

    forwarded = handler.next_call()["request"].headers["X-Request-Id"]
    assert forwarded != given
    assert len(forwarded) == 32
    assert response.headers["X-Request-Id"] == forwarded


async def test_api_call_sets_forwarded_headers(gateway, mockserver):
    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def handler(request):
        return {}

    await gateway.get("/api/v1/experiments", headers=BEARER)
    await gateway.get("/api/v1/experiments", headers={**BEARER, "X-Forwarded-For": "10.0.0.7"})

    first = handler.next_call()["request"].headers
    assert first["X-Forwarded-For"] == "127.0.0.1"
    assert first["X-Forwarded-Proto"] == "http"
    assert first["X-Forwarded-Host"] == own_origin(gateway).removeprefix("http://")
    second = handler.next_call()["request"].headers
    assert second["X-Forwarded-For"] == "10.0.0.7, 127.0.0.1"


async def test_api_call_returns_upstream_status_headers_and_body(gateway, mockserver):
    @mockserver.handler(f"{EXPERIMENT}/api/v1/experiments")
    def _handler(request):
        return mockserver.make_response(
            json={"id": "e1"},
            status=201,
            headers={"Location": "/api/v1/experiments/e1", "Idempotent-Replayed": "true"},
        )

    response = await gateway.post("/api/v1/experiments", json={}, headers=BEARER)

    assert response.status == 201
    assert response.headers["Location"] == "/api/v1/experiments/e1"
    assert response.headers["Idempotent-Replayed"] == "true"
    assert await response.json() == {"id": "e1"}


async def test_api_call_upstream_problem_is_passed_through(gateway, mockserver):
    problem = {"type": "about:blank", "title": "Conflict", "status": 409, "code": "conflict"}

    @mockserver.handler(f"{EXPERIMENT}/api/v1/experiments/e1")
    def _handler(request):
        return mockserver.make_response(
            json=problem, status=409, content_type="application/problem+json"
        )

    response = await gateway.delete("/api/v1/experiments/e1", headers=BEARER)

    assert response.status == 409
    assert response.content_type == "application/problem+json"
    assert await response.json(content_type=None) == problem


@pytest.fixture
async def upstream(aiohttp_server):
    """A small aiohttp server standing in for the experiment service: the test adds routes."""
    app = web.Application()

    async def start(routes: web.RouteTableDef):
        app.add_routes(routes)
        server = await aiohttp_server(app)
        return str(server.make_url(""))

    return start


async def test_api_call_hop_by_hop_headers_are_dropped_both_ways(start_gateway, upstream):
    seen = {}
    routes = web.RouteTableDef()

    @routes.get("/api/v1/experiments")
    async def _experiments(request):
        seen.update(request.headers)
        return web.Response(
            body=b"{}",
            content_type="application/json",
            headers={
                "Keep-Alive": "timeout=5",
                "Proxy-Authenticate": "Basic",
                "Trailer": "X-Checksum",
                "Upgrade": "h2c",
                "Connection": "X-Private",
                "X-Private": "hop",
                "X-Public": "end-to-end",
                "Server": "experiment/1.2.3",
            },
        )

    client = await start_gateway(experiment_url=await upstream(routes))
    response = await client.get(
        "/api/v1/experiments",
        headers={
            **BEARER,
            "Connection": "keep-alive, X-Client-Hop",
            "X-Client-Hop": "hop",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "Upgrade": "websocket",
            "X-Client-Public": "end-to-end",
        },
    )

    assert response.status == 200, await response.text()
    for name in ("Keep-Alive", "TE", "Proxy-Authorization", "Upgrade", "X-Client-Hop"):
        assert name not in seen, name
    assert seen["X-Client-Public"] == "end-to-end"
    for name in ("Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade", "X-Private"):
        assert name not in response.headers, name
    assert response.headers["X-Public"] == "end-to-end"
    assert response.headers["Server"] == "etp-gateway"


async def test_api_call_upstream_down_is_502(start_gateway, get_free_port):
    client = await start_gateway(experiment_url=f"http://127.0.0.1:{get_free_port()}")

    response = await client.get("/api/v1/experiments", headers=BEARER)

    await assert_problem(response, 502, "upstream_unavailable")


async def test_api_call_upstream_too_slow_is_504(start_gateway, upstream):
    routes = web.RouteTableDef()

    @routes.get("/api/v1/experiments")
    async def _slow(request):
        await asyncio.sleep(2)
        return web.json_response({})

    client = await start_gateway(experiment_url=await upstream(routes), upstream_read_timeout=0.2)
    started = asyncio.get_running_loop().time()
    response = await client.get("/api/v1/experiments", headers=BEARER)

    await assert_problem(response, 504, "upstream_timeout")
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_api_call_large_response_arrives_intact(start_gateway, upstream):
    payload = os.urandom(8 * 1024 * 1024)
    routes = web.RouteTableDef()

    @routes.get("/api/v1/telemetry/export")
    async def _export(request):
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for start in range(0, len(payload), 256 * 1024):
            await response.write(payload[start : start + 256 * 1024])
        await response.write_eof()
        return response

    client = await start_gateway(telemetry_url=await upstream(routes))
    response = await client.get("/api/v1/telemetry/export", headers=BEARER)

    assert response.status == 200
    body = await response.read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(payload).digest()


async def test_api_call_large_request_body_is_streamed_intact(start_gateway, upstream):
    # Bigger than the gateway's own body limit (1 MiB): only a streamed body gets through.
    payload = os.urandom(5 * 1024 * 1024)
    routes = web.RouteTableDef()

    @routes.post("/api/v1/telemetry")
    async def _ingest(request):
        received = await request.content.read()
        return web.json_response(
            {"size": len(received), "sha256": hashlib.sha256(received).hexdigest()}, status=202
        )

    client = await start_gateway(telemetry_url=await upstream(routes))
    response = await client.post(
        "/api/v1/telemetry",
        data=payload,
        headers={**BEARER, "Content-Type": "application/octet-stream"},
    )

    assert response.status == 202, await response.text()
    assert await response.json() == {
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }


async def test_api_call_request_body_reaches_upstream_before_it_ends(start_gateway, upstream):
    # The client holds back the rest of its body until the service has seen the first part:
    # a gateway that buffered the whole body would never send it on.
    first_part_seen = asyncio.Event()
    routes = web.RouteTableDef()

    @routes.post("/api/v1/telemetry")
    async def _ingest(request):
        first = await request.content.readexactly(5)
        first_part_seen.set()
        rest = await request.content.read()
        return web.json_response({"body": (first + rest).decode()}, status=202)

    async def body():
        yield b"first"
        await asyncio.wait_for(first_part_seen.wait(), timeout=5)
        yield b"-second"

    client = await start_gateway(telemetry_url=await upstream(routes))
    response = await client.post("/api/v1/telemetry", data=body(), headers=BEARER)

    assert response.status == 202, await response.text()
    assert await response.json() == {"body": "first-second"}


async def test_api_call_response_reaches_client_before_it_ends(start_gateway, upstream):
    # The service holds back the rest until the client has the first event (SSE-like).
    first_event_read = asyncio.Event()
    routes = web.RouteTableDef()

    @routes.get("/api/v1/telemetry/stream")
    async def _stream(request):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await asyncio.wait_for(first_event_read.wait(), timeout=5)
        await response.write(b"data: second\n\n")
        await response.write_eof()
        return response

    client = await start_gateway(telemetry_url=await upstream(routes))
    response = await client.get("/api/v1/telemetry/stream", headers=BEARER)

    assert response.status == 200
    assert response.content_type == "text/event-stream"
    first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), timeout=2)
    assert first == b"data: first\n\n"
    first_event_read.set()
    assert await response.content.read() == b"data: second\n\n"


@pytest.mark.parametrize("tracing", ["off", "console"])
async def test_api_call_traceparent_goes_on_with_gateway_span_when_tracing(
    start_gateway, upstream, tracing
):
    trace_id, client_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    seen = {}
    routes = web.RouteTableDef()

    @routes.get("/api/v1/experiments")
    async def _experiments(request):
        seen["traceparent"] = request.headers.get("traceparent")
        return web.json_response({})

    client = await start_gateway(experiment_url=await upstream(routes), tracing_exporter=tracing)
    response = await client.get(
        "/api/v1/experiments",
        headers={**BEARER, "traceparent": f"00-{trace_id}-{client_span}-01"},
    )

    assert response.status == 200
    _, seen_trace, seen_parent, _ = seen["traceparent"].split("-")
    assert seen_trace == trace_id
    # Tracing off: passed on as it came; on: the gateway's own span is the service's parent.
    assert (seen_parent == client_span) == (tracing == "off")
