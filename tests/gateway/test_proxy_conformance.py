"""The gateway's connection pool against aiohttp's client: one scripted server plays the same
recorded exchanges to each, and what each hands back (status, reason, headers in order without
the hop-by-hop ones, body bytes), and what the server received, must be the same byte for byte.
Malformed answers must be refused by both; where aiohttp's client tolerates what the gateway
refuses on purpose, the case says why.

aiohttp's expectations are those of its compiled parser (the one it ships and uses here), which
is lenient with answers outside Python's dev mode and strict in it."""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import DEBUG
from aiohttp.streams import StreamReader

from gateway_service.upstream.forward import hop_by_hop_removed
from gateway_service.upstream.pool import Origin, UpstreamPool
from tests.gateway.conftest import read_head
from tests.gateway.gateway_api import access_token
from tests.problems import assert_problem

BEARER = {"Authorization": f"Bearer {access_token()}"}
PATH = "/api/v1/experiments"
# Between the pieces of an answer, so that they reach the client in separate reads.
PAUSE = 0.01
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


@dataclass(frozen=True)
class Exchange:
    """A request and the answer the server writes, in pieces; `closes`: the server closes the
    connection after it. With `Expect: 100-continue` the server writes the first piece (the
    interim answer), then reads the body."""

    answer: tuple[bytes, ...]
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    closes: bool = False


@dataclass(frozen=True)
class Outcome:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


# Every case is followed by a plain request, so an answer framed wrongly shows in the next one.
FOLLOW_UP = Exchange(answer=(OK,))
CASES = {
    "chunked_with_extensions": (
        Exchange(
            answer=(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                b"\r\n5\r\nhello\r\n",
                b"1;ext=1\r\n,\r\n",
                b'6;name="a value"\r\n world\r\n0\r\n\r\n',  # the last chunk with the end
            )
        ),
        200,
        b"hello, world",
    ),
    "head_with_content_length": (
        Exchange(
            method="HEAD",
            answer=(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\n",),
        ),
        200,
        b"",
    ),
    "head_with_chunked": (
        Exchange(
            method="HEAD",
            answer=(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n",
            ),
        ),
        200,
        b"",
    ),
    "no_content_with_content_length": (
        Exchange(
            method="DELETE",
            answer=(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-Deleted: 1\r\n\r\n",),
        ),
        204,
        b"",
    ),
    "not_modified_with_content_length": (
        Exchange(
            answer=(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 42\r\n\r\n',)
        ),
        304,
        b"",
    ),
    "close_delimited": (
        Exchange(
            answer=(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nall ",
                b"of it",
            ),
            closes=True,
        ),
        200,
        b"all of it",
    ),
    "close_delimited_without_connection_close": (
        Exchange(
            answer=(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall ", b"of it"),
            closes=True,
        ),
        200,
        b"all of it",
    ),
    "close_delimited_http_1_0": (
        Exchange(answer=(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold",), closes=True),
        200,
        b"old",
    ),
    "trailers_after_chunked_body": (
        Exchange(
            answer=(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n",
                b"3\r\nabc\r\n",
                b"0\r\nX-Checksum: 900150983cd2\r\n\r\n",
            )
        ),
        200,
        b"abc",
    ),
    "trailers_read_with_the_head": (
        Exchange(
            answer=(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                b"3\r\nabc\r\n0\r\nX-Checksum: 900150983cd2\r\n\r\n",
            )
        ),
        200,
        b"abc",
    ),
    "continue_before_the_answer": (
        Exchange(answer=(b"HTTP/1.1 100 Continue\r\n\r\n", OK)),
        200,
        b"ok",
    ),
    "early_hints_before_the_answer": (
        Exchange(answer=(b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n", OK)),
        200,
        b"ok",
    ),
    "body_sent_with_expect_continue": (
        Exchange(
            method="POST",
            headers=(("Content-Type", "application/json"), ("Expect", "100-continue")),
            body=b'{"name": "e"}' * 1000,
            answer=(
                b"HTTP/1.1 100 Continue\r\n\r\n",
                b"HTTP/1.1 201 Created\r\nLocation: /api/v1/experiments/1\r\n"
                b"Content-Length: 7\r\n\r\ncreated",
            ),
        ),
        201,
        b"created",
    ),
    "body_of_a_plain_post": (
        Exchange(
            method="POST",
            headers=(("Content-Type", "application/octet-stream"),),
            body=bytes(range(256)) * 512,
            answer=(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",),
        ),
        202,
        b"",
    ),
}

# aiohttp's client tolerates these (its parser's lenient flags, outside dev mode, are there for
# servers that get HTTP wrong); a proxy refuses them on purpose: an answer that two parsers may
# read differently must not be passed on to a third.
LENIENT = "aiohttp parses answers leniently"
# RFC 9110 (5.5) keeps obs-text in field values for old servers only, and aiohttp's client hands
# it on as bytes; the services send ASCII, and the gateway, which writes headers as text, could
# not pass other bytes on unchanged.
OBS_TEXT = "obs-text is legal but not passed on"
REFUSED = {
    "obs_fold_space": (b"X-Folded: a\r\n  continued\r\n", LENIENT),
    "obs_fold_tab": (b"X-Folded: a\r\n\tcontinued\r\n", LENIENT),
    "obs_text_latin_1": (b"X-Text: caf\xe9\r\n", OBS_TEXT),
    "obs_text_utf_8": (b"X-Text: caf\xc3\xa9\r\n", OBS_TEXT),
    "control_byte_in_value": (b"X-Ctl: a\x01b\r\n", LENIENT),
    "delete_byte_in_value": (b"X-Ctl: a\x7fb\r\n", LENIENT),
    "nul_in_value": (b"X-Ctl: a\x00b\r\n", None),
    "bare_cr_in_value": (b"X-Cr: a\rb\r\n", None),
    "bare_cr_ending_a_field": (b"X-Cr: a\r", None),
    "space_before_colon": (b"X-Sp : a\r\n", None),
}
BARE_CR_STATUS_LINE = b"HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\nok"
BARE_LF_LINES = b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"


def _fields(head: bytes) -> dict[str, str]:
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower().decode()] = value.strip().decode("latin-1")
    return fields


def _serve(exchanges: list[Exchange], received: list[bytes]):
    """Answers each request with the exchange its X-Exchange header names, recording bodies."""

    async def script(reader, writer, number):
        while True:
            try:
                head = await read_head(reader)
            except asyncio.IncompleteReadError:
                return
            fields = _fields(head)
            exchange = exchanges[int(fields["x-exchange"])]
            pieces = list(exchange.answer)
            if fields.get("expect", "").lower() == "100-continue":
                writer.write(pieces.pop(0))
                await writer.drain()
                await asyncio.sleep(PAUSE)
            received.append(await reader.readexactly(int(fields.get("content-length", 0))))
            for index, piece in enumerate(pieces):
                if index:
                    await asyncio.sleep(PAUSE)
                writer.write(piece)
                await writer.drain()
            if exchange.closes:
                return

    return script


def _stream(body: bytes) -> StreamReader:
    """A request body as the gateway hands it to the pool: aiohttp's stream of it."""
    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    stream.feed_data(body)
    stream.feed_eof()
    return stream


def _outcome(status: int, reason: str, raw: Iterable[tuple[bytes, bytes]], body: bytes) -> Outcome:
    headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
    return Outcome(status, reason, hop_by_hop_removed(headers), body)


async def through_pool(url: str, exchanges: list[Exchange]) -> list[Outcome]:
    """As the gateway forwards: a known length read whole (but after HEAD), the rest streamed."""
    pool = UpstreamPool(connect_timeout=2, read_timeout=2)
    origin = Origin.from_url(url)
    outcomes = []
    try:
        for number, exchange in enumerate(exchanges):
            answer = await pool.request(
                origin,
                exchange.method,
                PATH,
                [*exchange.headers, ("X-Exchange", str(number))],
                None if exchange.body is None else _stream(exchange.body),
                None if exchange.body is None else len(exchange.body),
            )
            try:
                if answer.content_length is not None and exchange.method != "HEAD":
                    body = await answer.read()
                else:
                    body = b"".join([chunk async for chunk in answer.iter_chunks()])
            finally:
                answer.release()
            raw = [
                (name.encode("latin-1"), value.encode("utf-8", "surrogateescape"))
                for name, value in answer.headers
            ]
            outcomes.append(_outcome(answer.status, answer.reason, raw, body))
    finally:
        pool.close()
    return outcomes


async def through_aiohttp(url: str, exchanges: list[Exchange]) -> list[Outcome]:
    outcomes = []
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        for number, exchange in enumerate(exchanges):
            async with http.request(
                exchange.method,
                url + PATH,
                headers=[*exchange.headers, ("X-Exchange", str(number))],
                data=exchange.body,
            ) as response:
                body = await response.read()
            outcomes.append(
                _outcome(response.status, response.reason or "", response.raw_headers, body)
            )
    return outcomes


@pytest.mark.parametrize("case", CASES)
async def test_pool_hands_back_what_aiohttp_does(raw_upstream, case):
    exchange, status, body = CASES[case]
    exchanges = [exchange, FOLLOW_UP]
    received: list[bytes] = []
    url = await raw_upstream(_serve(exchanges, received))

    pool = await through_pool(url, exchanges)
    received_from_pool = received[:]
    received.clear()
    reference = await through_aiohttp(url, exchanges)

    assert pool == reference
    assert received_from_pool == received
    assert (pool[0].status, pool[0].body) == (status, body)
    assert (pool[1].status, pool[1].body) == (200, b"ok")


async def _refused_by_gateway_and_aiohttp(start_gateway, raw_upstream, answer, tolerated):
    async def script(reader, writer, number):
        await read_head(reader)
        writer.write(answer)
        await writer.drain()
        await reader.read()  # until the client goes

    url = await raw_upstream(script)
    gateway = await start_gateway(experiment_url=url)

    await assert_problem(await gateway.get(PATH, headers=BEARER), 502, "upstream_unavailable")

    async with aiohttp.ClientSession() as http:
        if tolerated and not DEBUG:
            async with http.get(url + PATH) as response:
                assert response.status == 200, tolerated
                assert await response.read() == b"ok"
        else:
            with pytest.raises(aiohttp.ClientResponseError):
                async with http.get(url + PATH) as response:
                    await response.read()


@pytest.mark.parametrize("case", REFUSED)
async def test_malformed_field_is_refused(start_gateway, raw_upstream, case):
    field, tolerated = REFUSED[case]
    answer = b"HTTP/1.1 200 OK\r\n" + field + b"Content-Length: 2\r\n\r\nok"
    await _refused_by_gateway_and_aiohttp(start_gateway, raw_upstream, answer, tolerated)


async def test_bare_cr_ending_the_status_line_is_refused(start_gateway, raw_upstream):
    await _refused_by_gateway_and_aiohttp(start_gateway, raw_upstream, BARE_CR_STATUS_LINE, None)


async def test_bare_lf_line_ends_are_refused(start_gateway, raw_upstream):
    await _refused_by_gateway_and_aiohttp(start_gateway, raw_upstream, BARE_LF_LINES, LENIENT)
