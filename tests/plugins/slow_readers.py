"""Slow readers: clients that ask for an export (CSV) on a socket with a tiny receive buffer,
read its first bytes and then nothing more, as an attacker pinning the server's resources would.

    stalled = await slow_readers(client, user, "/api/v1/runs/export", params)
"""

import asyncio
import socket
from urllib.parse import urlencode

import pytest


class SlowReader:
    """Asks for an export on a socket with a tiny receive buffer, reads its first bytes and
    then reads nothing more."""

    def __init__(self, sock: socket.socket, head: bytes) -> None:
        self.sock = sock
        self.head = head

    @classmethod
    async def open(cls, client, user, path: str, params) -> "SlowReader":
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, (client.host, client.port))
        target = f"{path}?{urlencode([*params, ('format', 'csv')])}"
        request = f"GET {target} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {user.token}\r\n"
        await loop.sock_sendall(sock, f"{request}\r\n".encode())
        head = await asyncio.wait_for(loop.sock_recv(sock, 200), 10)
        return cls(sock, head)

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    async def until(self, expected: bytes) -> bytes:
        """What came so far, read on until `expected` is in it."""
        loop = asyncio.get_running_loop()
        while expected not in self.head:
            self.head += await asyncio.wait_for(loop.sock_recv(self.sock, 4096), 5)
        return self.head

    async def drained(self) -> bool:
        """Reads what is left; True once the server has ended the connection."""
        loop = asyncio.get_running_loop()
        try:
            while chunk := await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 20), 5):
                del chunk
        except ConnectionResetError:
            pass
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def slow_readers():
    opened: list[SlowReader] = []

    async def open_reader(client, user, path: str, params) -> SlowReader:
        reader = await SlowReader.open(client, user, path, params)
        opened.append(reader)
        return reader

    yield open_reader
    for reader in opened:
        reader.close()
