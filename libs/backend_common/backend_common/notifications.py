"""PostgreSQL LISTEN on a connection of its own, kept open across database restarts.

`Listener(dsn, {"channel": callback})` calls `callback(payload)` for each notification. When the
connection is lost (or stops answering pings) it reconnects with backoff. `on_reconnect()` runs on
every connect: notifications sent while not listening are gone, so whatever they would have
invalidated must be dropped then.
"""

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

_log = structlog.get_logger(__name__)


class Listener:
    def __init__(
        self,
        dsn: str,
        channels: dict[str, Callable[[str], None]],
        *,
        on_reconnect: Callable[[], None] = lambda: None,
        max_backoff: float = 5.0,
        ping_interval: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._channels = channels
        self._on_reconnect = on_reconnect
        self._max_backoff = max_backoff
        self._ping_interval = ping_interval
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is None:
            return
        # On Python < 3.12 a cancellation that lands just as asyncpg.connect's inner wait_for
        # finishes is swallowed, and the task would go on listening: cancel until it is done.
        while not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=0.5)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            try:
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                for channel, callback in self._channels.items():
                    await conn.add_listener(channel, _deliver(callback))
                self._on_reconnect()
                backoff = 0.1
                self.connected.set()
                _log.info("listening", channels=list(self._channels))
                await self._until_lost(conn, lost)
                _log.warning("listen_connection_lost")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                _log.warning("listen_connection_failed")
            finally:
                self.connected.clear()
                if not conn.is_closed():
                    conn.terminate()

    async def _until_lost(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Returns when the connection ends, or stops answering a periodic ping."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._ping_interval)
                return
            await conn.execute("SELECT 1", timeout=self._ping_interval / 2)


def _deliver(callback: Callable[[str], None]) -> Callable[..., None]:
    def on_notification(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        callback(payload)

    return on_notification
