"""The gateway's connections to the services: kept alive, replaced when the service dropped one,
and answers framed by length, by chunks or by the connection's end."""

import asyncio
import os

import aiohttp
import pytest
from aiohttp import web

from gateway_service.app import create_app
from tests.gateway.conftest import read_head
from tests.gateway.gateway_api import access_token
from tests.plugins.waiting import eventually
from tests.problems import assert_problem

BEARER = {"Authorization": f"Bearer {access_token()}"}
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


async def test_calls_in_a_row_share_one_connection(start_gateway, aiohttp_server):
    peers = []

    async def experiments(request):
        peers.append(request.transport.get_extra_info("peername"))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/api/v1/experiments", experiments)
    server = await aiohttp_server(app)
    client = await start_gateway(experiment_url=str(server.make_url("")))

    for _ in range(5):
        response = await client.get("/api/v1/experiments", headers=BEARER)
        assert response.status == 200

    assert len(peers) == 5
    assert len(set(peers)) == 1


async def test_call_on_connection_the_service_dropped_goes_out_again(start_gateway, raw_upstream):
    # The service closes its first connection when the second request arrives on it, as a
    # service does that ends an idle connection just as a request goes out.
    requests = []

    async def script(reader, writer, number):
        requests.append((number, await read_head(reader)))
        writer.write(OK)
        await writer.drain()
        if number == 0:
            requests.append((number, await read_head(reader)))  # closed without an answer

    client = await start_gateway(experiment_url=await raw_upstream(script))

    first = await client.get("/api/v1/experiments", headers=BEARER)
    second = await client.get("/api/v1/experiments?page=2", headers=BEARER)

    assert (first.status, second.status) == (200, 200)
    assert [number for number, _ in requests] == [0, 0, 1]
    assert requests[2][1].startswith(b"GET /api/v1/experiments?page=2 HTTP/1.1\r\n")


async def test_call_with_body_on_dropped_connection_is_502_not_sent_twice(
    start_gateway, raw_upstream
):
    requests = []

    async def script(reader, writer, number):
        requests.append(await read_head(reader))
        writer.write(OK)
        await writer.drain()
        requests.append(await read_head(reader))

    client = await start_gateway(experiment_url=await raw_upstream(script))
    assert (await client.get("/api/v1/experiments", headers=BEARER)).status == 200

    response = await client.post("/api/v1/experiments", json={"name": "e"}, headers=BEARER)

    await assert_problem(response, 502, "upstream_unavailable")
    assert [head.split(b" ", 1)[0] for head in requests] == [b"GET", b"POST"]


async def test_answer_without_length_ends_with_the_connection(start_gateway, raw_upstream):
    async def script(reader, writer, number):
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        writer.write(b"all of it")

    client = await start_gateway(experiment_url=await raw_upstream(script))
    response = await client.get("/api/v1/experiments", headers=BEARER)

    assert response.status == 200
    assert await response.read() == b"all of it"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",  # cut short
        b"not http at all\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    ],
)
async def test_broken_answer_is_502(start_gateway, raw_upstream, answer):
    async def script(reader, writer, number):
        await read_head(reader)
        writer.write(answer)

    client = await start_gateway(experiment_url=await raw_upstream(script))
    response = await client.get("/api/v1/experiments", headers=BEARER)

    await assert_problem(response, 502, "upstream_unavailable")


async def test_head_gets_headers_without_body_and_next_call_works(start_gateway, aiohttp_server):
    async def export(request):
        return web.Response(body=b"x" * 1000, content_type="text/csv")

    app = web.Application()
    app.router.add_get("/api/v1/experiments/export", export)
    server = await aiohttp_server(app)
    client = await start_gateway(experiment_url=str(server.make_url("")))

    head = await client.head("/api/v1/experiments/export", headers=BEARER)
    get = await client.get("/api/v1/experiments/export", headers=BEARER)

    assert head.status == 200
    assert head.headers["Content-Length"] == "1000"
    assert await head.read() == b""
    assert get.status == 200
    assert await get.read() == b"x" * 1000


async def test_answer_before_the_body_was_read_is_passed_on(start_gateway, aiohttp_server):
    # The service refuses the upload at once, without reading it.
    async def ingest(request):
        return web.json_response({"code": "payload_too_large"}, status=413)

    app = web.Application()
    app.router.add_post("/api/v1/telemetry", ingest)
    server = await aiohttp_server(app)
    client = await start_gateway(telemetry_url=str(server.make_url("")))

    response = await client.post(
        "/api/v1/telemetry", data=os.urandom(4 * 1024 * 1024), headers=BEARER
    )
    after = await client.post("/api/v1/telemetry", data=b"{}", headers=BEARER)

    assert response.status == 413
    assert await response.json() == {"code": "payload_too_large"}
    assert after.status == 413


async def test_service_that_takes_none_of_the_body_is_504(start_gateway, raw_upstream):
    async def script(reader, writer, number):
        await read_head(reader)
        await asyncio.sleep(10)  # reads no body, answers nothing

    client = await start_gateway(
        telemetry_url=await raw_upstream(script), upstream_read_timeout=0.3
    )
    started = asyncio.get_running_loop().time()
    response = await client.post(
        "/api/v1/telemetry", data=os.urandom(64 * 1024 * 1024), headers=BEARER
    )

    await assert_problem(response, 504, "upstream_timeout")
    assert asyncio.get_running_loop().time() - started < 5


async def raw_exchange(client, request: bytes, *, seconds: float = 5.0) -> tuple[int, bytes]:
    """Sends `request` as written to the gateway and reads its answer: status and the rest."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(seconds):
            head = await read_head(reader)
            rest = await reader.read(64 * 1024)
    finally:
        writer.close()
    return int(head.split(b" ", 2)[1]), head + rest


def keep_alive_service(heads: list[tuple[int, bytes]]):
    async def script(reader, writer, number):
        while True:
            try:
                heads.append((number, await read_head(reader)))
            except asyncio.IncompleteReadError:
                return
            writer.write(OK)
            await writer.drain()

    return script


BEARER_LINE = b"Authorization: " + BEARER["Authorization"].encode() + b"\r\n"


async def test_absolute_form_target_goes_on_as_path_and_query(start_gateway, raw_upstream):
    heads: list[tuple[int, bytes]] = []
    client = await start_gateway(experiment_url=await raw_upstream(keep_alive_service(heads)))
    own = f"http://127.0.0.1:{client.port}".encode()

    status, _ = await raw_exchange(
        client,
        b"GET " + own + b"/api/v1/experiments?name=a%2Fb HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n" + BEARER_LINE + b"Connection: close\r\n\r\n",
    )

    assert status == 200
    assert heads[0][1].startswith(b"GET /api/v1/experiments?name=a%2Fb HTTP/1.1\r\n")


@pytest.mark.parametrize(
    "target",
    [
        b"http://other.example/api/v1/experiments",
        b"http://other.example:{port}/api/v1/experiments",
        b"https://127.0.0.1:{port}/api/v1/experiments",
        b"http://user@127.0.0.1:{port}/api/v1/experiments",
    ],
)
async def test_absolute_form_target_of_another_origin_is_400(start_gateway, raw_upstream, target):
    heads: list[tuple[int, bytes]] = []
    client = await start_gateway(experiment_url=await raw_upstream(keep_alive_service(heads)))
    target = target.replace(b"{port}", str(client.port).encode())

    status, answer = await raw_exchange(
        client,
        b"GET "
        + target
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + BEARER_LINE
        + b"Connection: close\r\n\r\n",
    )

    assert status == 400
    assert b"application/problem+json" in answer
    assert b'"foreign_target"' in answer
    assert heads == []


@pytest.mark.parametrize(
    ("framing", "part"),
    [
        (b"Content-Length: 100\r\n", b'{"batch": '),
        (b"Transfer-Encoding: chunked\r\n", b'a\r\n{"batch": '),
    ],
)
async def test_client_that_stops_sending_its_body_gets_408_and_connection_not_reused(
    start_gateway, raw_upstream, framing, part
):
    closed = asyncio.Event()
    heads: list[tuple[int, bytes]] = []

    async def script(reader, writer, number):
        if number == 0:
            heads.append((number, await read_head(reader)))
            while await reader.read(1024):  # the part of the body, then the gateway's close
                pass
            closed.set()
            return
        await keep_alive_service(heads)(reader, writer, number)

    client = await start_gateway(telemetry_url=await raw_upstream(script), client_body_timeout=0.3)
    started = asyncio.get_running_loop().time()

    status, answer = await raw_exchange(
        client,
        b"POST /api/v1/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + BEARER_LINE
        + b"Content-Type: application/json\r\n"
        + framing
        + b"\r\n"
        + part,
    )

    assert status == 408
    assert b'"request_timeout"' in answer
    assert asyncio.get_running_loop().time() - started < 3
    await asyncio.wait_for(closed.wait(), 2)
    after = await client.post("/api/v1/telemetry", data=b"{}", headers=BEARER)
    assert after.status == 200
    assert [number for number, _ in heads] == [0, 1]


def held_first_service(heads: list[tuple[int, bytes]], arrived, release):
    """Answers at once but the very first request, which waits for `release`."""

    async def script(reader, writer, number):
        while True:
            try:
                heads.append((number, await read_head(reader)))
            except asyncio.IncompleteReadError:
                return
            if len(heads) == 1:
                arrived.set()
                await release.wait()
            writer.write(OK)
            await writer.drain()

    return script


async def test_calls_past_connection_bound_wait_then_get_503_with_retry_after(
    start_gateway, raw_upstream
):
    heads: list[tuple[int, bytes]] = []
    arrived, release = asyncio.Event(), asyncio.Event()
    client = await start_gateway(
        experiment_url=await raw_upstream(held_first_service(heads, arrived, release)),
        upstream_max_connections=1,
        upstream_queue_timeout=0.3,
    )
    first = asyncio.ensure_future(client.get("/api/v1/experiments", headers=BEARER))
    await asyncio.wait_for(arrived.wait(), 2)
    started = asyncio.get_running_loop().time()

    refused = await client.get("/api/v1/experiments", headers=BEARER)

    await assert_problem(refused, 503, "upstream_busy")
    assert int(refused.headers["Retry-After"]) >= 1
    assert asyncio.get_running_loop().time() - started >= 0.25
    assert len(heads) == 1
    release.set()
    assert (await first).status == 200
    assert (await client.get("/api/v1/experiments", headers=BEARER)).status == 200
    assert [number for number, _ in heads] == [0, 0]


async def test_call_past_connection_bound_is_served_when_one_comes_free(
    start_gateway, raw_upstream
):
    heads: list[tuple[int, bytes]] = []
    arrived, release = asyncio.Event(), asyncio.Event()
    client = await start_gateway(
        experiment_url=await raw_upstream(held_first_service(heads, arrived, release)),
        upstream_max_connections=1,
        upstream_queue_timeout=5,
    )
    first = asyncio.ensure_future(client.get("/api/v1/experiments", headers=BEARER))
    await asyncio.wait_for(arrived.wait(), 2)
    second = asyncio.ensure_future(client.get("/api/v1/experiments?page=2", headers=BEARER))
    await asyncio.sleep(0.2)
    assert not second.done()

    release.set()

    assert [(await first).status, (await second).status] == [200, 200]
    assert [number for number, _ in heads] == [0, 0]


async def test_connection_bound_is_per_service(start_gateway, raw_upstream):
    heads: list[tuple[int, bytes]] = []
    arrived, release = asyncio.Event(), asyncio.Event()
    client = await start_gateway(
        experiment_url=await raw_upstream(held_first_service(heads, arrived, release)),
        telemetry_url=await raw_upstream(keep_alive_service([])),
        upstream_max_connections=1,
        upstream_queue_timeout=0.3,
    )
    first = asyncio.ensure_future(client.get("/api/v1/experiments", headers=BEARER))
    await asyncio.wait_for(arrived.wait(), 2)

    other = await client.get("/api/v1/telemetry/sensors", headers=BEARER)

    assert other.status == 200
    release.set()
    assert (await first).status == 200


async def test_client_that_leaves_a_stream_ends_the_call_quietly(
    make_settings, get_free_port, raw_upstream, log_lines
):
    # A browser closing a live page: the gateway's next write finds the connection gone. Run as
    # in production: aiohttp's test server cancels a handler whose client left, which hides it.
    upstream_closed = asyncio.Event()

    async def script(reader, writer, number):
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            while True:
                writer.write(b"6\r\ndata:\n\r\n")
                await writer.drain()
                await asyncio.sleep(0.02)
        except ConnectionError:
            upstream_closed.set()

    settings = make_settings("gateway", telemetry_url=await raw_upstream(script))
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    port = get_free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/api/v1/telemetry/stream?sensor_id=x"
            response = await session.get(url, headers=BEARER)
            assert response.status == 200
            await response.content.readany()
            response.close()
            await asyncio.wait_for(upstream_closed.wait(), 5)  # it let go of the service too
            await eventually(lambda: any(line["event"] == "request" for line in log_lines()))
    finally:
        await runner.cleanup()
    assert "unhandled_error" not in [line["event"] for line in log_lines()]
