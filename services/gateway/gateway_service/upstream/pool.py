"""Keep-alive HTTP/1.1 connections to the services, for requests forwarded as they come.

aiohttp's client does much per request that forwarding has no use for (cookies, redirects, URL
normalisation, default headers, a timer rescheduled on every read); here the request head is
written in one piece, the body streamed after it, and the answer parsed by httptools (llhttp,
the parser aiohttp itself is built on). It takes about a third of the gateway's CPU time per
proxied request off (docs/performance.md).
"""

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Self, cast
from urllib.parse import urlsplit

import httptools
from aiohttp import StreamReader

# Past this much unread answer the upstream socket is paused, which stops the service's writes:
# an answer takes about this much memory here at most, however slowly its client reads.
_PAUSE_ABOVE = 256 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UpstreamError(Exception):
    """The service could not be reached, or broke its answer off."""


class UpstreamTimeout(UpstreamError):
    """The service took longer than the connect or read timeout."""


class UpstreamBusy(Exception):
    """The service has as many connections in use as it may; none came free in time."""


class ClientBodyTimeout(Exception):
    """The client stopped sending the request's body."""


@dataclass(frozen=True)
class Origin:
    """Where a service listens, from its base URL (`http://host:port/prefix`)."""

    host: str
    port: int
    host_header: str
    base_path: str
    tls: ssl.SSLContext | None = field(default=None, compare=False)

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        secure = parts.scheme == "https"
        return cls(
            host=parts.hostname,
            port=parts.port or (443 if secure else 80),
            host_header=parts.netloc.rpartition("@")[2],
            base_path=parts.path.rstrip("/"),
            tls=ssl.create_default_context() if secure else None,
        )


class _Connection(asyncio.Protocol):
    """One connection: writes a request, parses its answer, tells readers what arrived."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.reused = False
        self.busy = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._paused = False
        self._start()

    def _start(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self.received_any = False
        self.sent_all = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.ends_at_head = False
        self.informational = False

    def begin(self, *, head_only: bool) -> None:
        """Ready for the next exchange; a HEAD's answer ends with its head."""
        self._start()
        self.ends_at_head = head_only
        self.busy = True

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # nothing was asked: the connection cannot be trusted any more
            self.close()
            return
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            # A callback's own refusal is the error's context.
            self._fail(UpstreamError(f"malformed answer: {exc.__context__ or exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self.head_done and not self.complete and not self._has_framing():
            self.complete = True  # a body without length or chunks ends with the connection
        elif not self.complete:
            self._fail(UpstreamError(f"the service closed the connection ({exc or 'EOF'})"))
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # httptools callbacks

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head_done:
            return  # a trailer field after a chunked body: not passed on, as aiohttp's client
        if not value.isascii():
            # obs-text: the services send ASCII only, and other bytes could not be passed on
            # unchanged (the answer's headers go out as text).
            raise ValueError("a header value with bytes outside ASCII")
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # 100 Continue, 103 Early Hints: not the answer, which follows on its heels.
            self.informational = True
            self.reason = b""
            self.headers = []
            return
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.head_done = True
        if self.ends_at_head:
            # The parser cannot be told that a HEAD's answer has no body: the connection is
            # not used again (`reusable`), so whatever it would wait for does not matter.
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.ends_at_head:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _PAUSE_ABOVE and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        self.keep_alive = self._parser.should_keep_alive()
        self.complete = True
        self._wake()

    # for the exchange

    @property
    def reusable(self) -> bool:
        return (
            self.complete
            and self.sent_all
            and self.keep_alive
            and not self.ends_at_head
            and self.error is None
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self, seconds: float) -> None:
        """Until the socket takes more, for at most `seconds`."""
        if self._drained is not None:
            try:
                async with asyncio.timeout(seconds):
                    await self._drained
            except TimeoutError:
                raise UpstreamTimeout("the service did not take the body in time") from None

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def wait(self, seconds: float) -> None:
        """Until more of the answer (or an error) arrives, for at most `seconds` (a plain timer:
        asyncio.timeout does more per wait than this needs)."""
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(seconds, self._time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    @staticmethod
    def _time_out(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(UpstreamTimeout("the service did not answer in time"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _has_framing(self) -> bool:
        return any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.close()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Answer:
    """A service's answer: status and head at once, the body read whole or as it arrives.
    `release` must follow (the connection goes back to the pool, or is closed)."""

    def __init__(self, pool: "UpstreamPool", service: "_Service", conn: _Connection) -> None:
        self._pool = pool
        self._service = service
        self._conn = conn
        self._released = False
        self.status = conn.status
        self.reason = conn.reason.decode("latin-1")
        self.headers = [
            (name.decode("latin-1"), value.decode("utf-8", "surrogateescape"))
            for name, value in conn.headers
        ]
        # A HEAD's answer has the length its GET's body would have, and no body.
        self.content_length: int | None = None
        if not 100 <= self.status < 200 and self.status not in (204, 304):
            for name, value in conn.headers:
                if name.lower() == b"content-length":
                    self.content_length = int(value)

    async def read(self) -> bytes:
        conn = self._conn
        while not conn.complete and conn.error is None:
            await conn.wait(self._pool.read_timeout)
        if conn.error is not None:
            raise UpstreamError(str(conn.error))
        return conn.take()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            if conn.chunks:
                yield conn.take()
            elif conn.error is not None:
                raise UpstreamError(str(conn.error))
            elif conn.complete:
                return
            else:
                await conn.wait(self._pool.read_timeout)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._pool.put_back(self._service, self._conn)


class _Service:
    """The pool's share of one service: its idle connections (newest last) and the slots of
    connections in use."""

    __slots__ = ("idle", "slots")

    def __init__(self, max_in_use: int) -> None:
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(max_in_use)


class UpstreamPool:
    """Idle keep-alive connections per service, newest first. Connections idle longer than
    `idle_seconds` (under the services' own 75 s keep-alive) are not used again, and one that
    the service closed while it sat idle is noticed before a request goes out on it. Each
    request in flight holds a connection (a live stream as long as it runs); at most
    `max_in_use` per service, past which a request waits up to `queue_timeout` seconds for one
    to come free (`UpstreamBusy`). A request's body is taken from the client as it arrives; a
    client that sends none of the rest for `body_timeout` seconds ends the exchange
    (`ClientBodyTimeout`) and the connection is closed, its request half sent."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        body_timeout: float = 30.0,
        max_in_use: int = 512,
        queue_timeout: float = 5.0,
        idle_seconds: float = 30.0,
        max_idle_per_origin: int = 100,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.body_timeout = body_timeout
        self.queue_timeout = queue_timeout
        self._max_in_use = max_in_use
        self._idle_seconds = idle_seconds
        self._max_idle = max_idle_per_origin
        self._services: dict[Origin, _Service] = {}

    async def request(
        self,
        origin: Origin,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: StreamReader | None = None,
        length: int | None = None,
    ) -> Answer:
        """Sends the request (`target`: path and query below the origin's base path) and
        waits for the answer's head. `body` is streamed: with `length` under Content-Length,
        without it chunked. A request without a body that fails on a reused connection before
        any answer arrived (the service closed it meanwhile) is sent once more on a new one."""
        if body is not None:
            framing = (
                f"Content-Length: {length}\r\n"
                if length is not None
                else "Transfer-Encoding: chunked\r\n"
            )
        else:
            framing = "Content-Length: 0\r\n" if method in _BODY_METHODS else ""
        head = "".join(
            [
                f"{method} {origin.base_path}{target} HTTP/1.1\r\nHost: {origin.host_header}\r\n",
                *(f"{name}: {value}\r\n" for name, value in headers),
                framing,
                "\r\n",
            ]
        ).encode("utf-8", "surrogateescape")
        service = self._services.get(origin)
        if service is None:
            service = self._services[origin] = _Service(self._max_in_use)
        await self._take_slot(service.slots)
        try:
            while True:
                conn = await self._connection(service, origin)
                conn.begin(head_only=method == "HEAD")
                try:
                    conn.write(head)
                    conn.sent_all = body is None or await _send_body(
                        conn,
                        body,
                        chunked=length is None,
                        seconds=self.read_timeout,
                        body_seconds=self.body_timeout,
                    )
                    while not conn.head_done and conn.error is None:
                        await conn.wait(self.read_timeout)
                except BaseException:
                    conn.close()
                    raise
                if conn.error is None:
                    return Answer(self, service, conn)
                conn.close()
                if not (conn.reused and body is None and not conn.received_any):
                    raise UpstreamError(str(conn.error))
        except BaseException:
            service.slots.release()
            raise

    def put_back(self, service: _Service, conn: _Connection) -> None:
        service.slots.release()
        idle = service.idle
        if not conn.reusable or len(idle) >= self._max_idle:
            conn.close()
            return
        conn.busy = False
        conn.idle_since = asyncio.get_running_loop().time()
        idle.append(conn)

    def close(self) -> None:
        for service in self._services.values():
            for conn in service.idle:
                conn.close()
            service.idle.clear()

    async def _take_slot(self, slots: asyncio.Semaphore) -> None:
        if not slots.locked():
            await slots.acquire()  # at once: no timer for the common case
            return
        try:
            async with asyncio.timeout(self.queue_timeout):
                await slots.acquire()
        except TimeoutError:
            raise UpstreamBusy("every connection to the service is in use") from None

    async def _connection(self, service: _Service, origin: Origin) -> _Connection:
        idle = service.idle
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()
            transport = conn.transport
            fresh = now - conn.idle_since < self._idle_seconds
            if fresh and transport is not None and not transport.is_closing():
                conn.reused = True
                return conn
            conn.close()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await asyncio.get_running_loop().create_connection(
                    _Connection,
                    origin.host,
                    origin.port,
                    ssl=origin.tls,
                    server_hostname=origin.host if origin.tls is not None else None,
                )
        except TimeoutError:
            raise UpstreamTimeout("the service did not accept the connection in time") from None
        except OSError as exc:
            raise UpstreamError(f"cannot connect: {exc}") from None
        return conn


async def _send_body(
    conn: _Connection, body: StreamReader, *, chunked: bool, seconds: float, body_seconds: float
) -> bool:
    """Streams the body on; stops early (False) when the service has answered or gone, and
    gives up when the service takes none of it for `seconds` or the client sends none of the
    rest for `body_seconds`."""
    while True:
        chunk = body.read_nowait()  # what has arrived: a timer only when waiting for more
        if not chunk:
            if body.at_eof():
                break
            try:
                async with asyncio.timeout(body_seconds):
                    chunk = await body.readany()
            except TimeoutError:
                raise ClientBodyTimeout("the client stopped sending the body") from None
            if not chunk:
                break
        if conn.error is not None or conn.complete:
            return False
        conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
        await conn.drain(seconds)
    if chunked and conn.error is None:
        conn.write(b"0\r\n\r\n")
    return conn.error is None
