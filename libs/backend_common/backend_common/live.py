"""Live streams of stored batches (telemetry readings, run metrics), fanned out in the process.

Each stored batch sends a NOTIFY with a pointer (`{"batch": id, ...}`, see
`backend_common.batches.insert_batch_sql`). The process listens once (`notifications.Listener`
calls `Hub.notified`); one dispatcher task takes the pointers in commit order, and only when some
stream wants a batch (its filter says so from the pointer) does it load the batch's items, once,
and hand the same event to every such stream. So the cost grows with batches, not with points or
clients. Each stream has a bounded queue: a client that does not keep up is cut off, and nobody
waits for it.

A reconnecting client names the last batch it got (`Last-Event-ID`): the batches after it are
read from the table first. So are they for every stream when the LISTEN connection was lost
(notifications sent meanwhile are gone). Batch ids are handed out when a batch is stored and
become visible when it commits, so two batches committing in the other order can make a replay
by id miss the one that committed later; the live path itself delivers every batch.

An event is `{"id": batch id, "items": what the loader gave}`; the API encodes it (once per view,
caching the bytes in the event) as server-sent events (`backend_common.sse`).
"""

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import orjson
import structlog

from backend_common.clock import Clock, utc_now
from backend_common.db import Database
from backend_common.errors import DomainError
from backend_common.metrics import LIVE_STREAM_DROPS, LIVE_STREAMS
from backend_common.settings import LiveStreamSettings

_log = structlog.get_logger(__name__)

CLOSED = object()  # the last item of a stream's queue
_MAX_REPLAYED_REMEMBERED = 10_000


class Filter(Protocol):
    """Which batches a stream wants, judged from a batch's NOTIFY pointer."""

    def wants(self, pointer: dict[str, Any]) -> bool: ...


F = TypeVar("F", bound=Filter)
V = TypeVar("V")


@dataclass(eq=False)
class Stream(Generic[F]):
    filter: F
    user_id: uuid.UUID
    queue: asyncio.Queue[Any]
    last_id: int = 0
    # Batches read from the table whose notification may still come: not to be sent twice.
    replayed: set[int] = field(default_factory=set)
    # Live batches go to a stream once the dispatcher has opened it (after its catch-up).
    opened: bool = False
    ended: bool = False


# Why a stream was ended while it ran (the reason of its final `end` event).
ACCESS_REVOKED = "access_revoked"  # no longer a member of what it streams
TOKEN_EXPIRED = "token_expired"  # the access token it was opened with expired
ACCESS_UNVERIFIED = "access_unverified"  # the re-check could not be made (auth unreachable)


class StreamEnded(DomainError):
    """The stream may not go on; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Watch(Generic[V]):
    """An open stream's right to go on. Access was checked when it opened; `check` runs again
    every `interval` seconds (as often as roles are re-asked of the auth service) and gives what
    the caller may see now (e.g. which fields), or raises StreamEnded; the stream also ends when
    the token it was opened with expires."""

    check: Callable[[], Awaitable[V]]
    expires_at: datetime
    interval: float
    clock: Clock = utc_now

    def seconds_left(self) -> float:
        """Until the token expires, by the service's clock."""
        return (self.expires_at - self.clock()).total_seconds()

    async def view(self) -> V:
        """What the stream may show now; StreamEnded if it may not go on."""
        if self.seconds_left() <= 0:
            raise StreamEnded(TOKEN_EXPIRED)
        try:
            return await self.check()
        except StreamEnded:
            raise
        except Exception:
            # Streaming on unchecked would outlive a revocation made meanwhile.
            _log.warning("live_access_recheck_failed", exc_info=True)
            raise StreamEnded(ACCESS_UNVERIFIED) from None


F_contra = TypeVar("F_contra", bound=Filter, contravariant=True)


class BatchSource(Protocol[F_contra]):
    """The SQL of stored batches a service's hub reads (a repository on one connection)."""

    async def batches_after(self, flt: F_contra, after: int, *, limit: int) -> list[int]:
        """Ids of the stored batches after `after` that `flt` wants, oldest first (at most
        `limit`, the newest ones)."""
        ...

    async def batch_items(self, batch_id: int) -> Any:
        """One stored batch's items, as the events show them."""
        ...

    async def latest_batch(self) -> int: ...


class StoredBatches(Generic[F]):
    """What the hub reads of stored batches (those a stream missed, a batch's items, the latest
    batch id), each read on a pooled connection of its own through `source(conn)`."""

    def __init__(
        self,
        db: Database,
        source: Callable[[asyncpg.Connection], BatchSource[F]],
        *,
        replay_limit: int,
    ) -> None:
        self._db = db
        self._source = source
        self._replay_limit = replay_limit

    async def missed(self, flt: F, after: int) -> list[int]:
        """The newest `replay_limit` batches after `after` that the filter wants, oldest first."""
        async with self._db.connection() as conn:
            return await self._source(conn).batches_after(flt, after, limit=self._replay_limit)

    async def items(self, batch_id: int) -> Any:
        async with self._db.connection() as conn:
            return await self._source(conn).batch_items(batch_id)

    async def latest(self) -> int:
        async with self._db.connection() as conn:
            return await self._source(conn).latest_batch()


class Hub(Generic[F]):
    def __init__(
        self,
        batches: StoredBatches[F],
        *,
        queue_size: int,
        streams_per_user: int,
        keepalive: float,
        recheck: float = 5.0,
        clock: Clock = utc_now,
        name: str = "live",
    ) -> None:
        self.keepalive = keepalive  # seconds between keep-alive comments on an idle stream
        self.recheck = recheck  # seconds between checks of an open stream's access
        # Judges access tokens' expiry: the time of day, as the token verifier's does (not the
        # service's clock of rules, which tests move past tokens' lifetimes).
        self.clock = clock
        self._batches = batches
        self._queue_size = queue_size
        self._streams_per_user = streams_per_user
        self._streams: set[Stream[F]] = set()
        self._work: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # etp_live_streams and etp_live_stream_drops_total{stream=name}
        self._open_streams = LIVE_STREAMS.labels(name)
        self._drops = LIVE_STREAM_DROPS.labels(name)

    @classmethod
    def of(
        cls,
        db: Database,
        source: Callable[[asyncpg.Connection], BatchSource[F]],
        settings: LiveStreamSettings,
        *,
        name: str,
    ) -> "Hub[F]":
        """The hub of a service's streams (`name`: their kind, in metrics), with its stream_*
        settings."""
        return cls(
            StoredBatches(db, source, replay_limit=settings.stream_replay_batches),
            queue_size=settings.stream_queue_size,
            streams_per_user=settings.streams_per_user,
            keepalive=settings.stream_keepalive_seconds,
            recheck=settings.stream_recheck_seconds,
            name=name,
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._dispatch())

    async def stop(self) -> None:
        """Ends every stream (their handlers return) and the dispatcher."""
        for stream in list(self._streams):
            self._end(stream)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def can_open(self, user_id: uuid.UUID) -> bool:
        mine = sum(1 for stream in self._streams if stream.user_id == user_id)
        return mine < self._streams_per_user

    def watch(self, check: Callable[[], Awaitable[V]], *, expires_at: datetime) -> Watch[V]:
        """How a stream opened now keeps checking that it may go on."""
        return Watch(check, expires_at, self.recheck, self.clock)

    def open(self, flt: F, *, user_id: uuid.UUID, after: int | None) -> Stream[F]:
        """A stream of the batches after `after` (a batch id), or of those from now on."""
        stream = Stream(flt, user_id, asyncio.Queue(self._queue_size))
        self._streams.add(stream)
        self._open_streams.inc()
        self._work.put_nowait(("open", stream, after))
        return stream

    def close(self, stream: Stream[F]) -> None:
        stream.ended = True
        if stream in self._streams:
            self._streams.discard(stream)
            self._open_streams.dec()

    def notified(self, payload: str) -> None:
        """LISTEN callback: the pointer of one stored batch."""
        self._work.put_nowait(("batch", orjson.loads(payload)))

    def reconnected(self) -> None:
        """Notifications may have been missed: every stream catches up from the table."""
        self._work.put_nowait(("resync",))

    async def _dispatch(self) -> None:
        # One task, so that opening, catching up and live batches happen in one order.
        while True:
            work = await self._work.get()
            try:
                if work[0] == "batch":
                    await self._live(work[1])
                elif work[0] == "open":
                    _, stream, after = work
                    if after is None:
                        stream.last_id = await self._batches.latest()
                    else:
                        stream.last_id = after
                        await self._catch_up(stream)
                    stream.opened = True
                else:
                    for stream in list(self._streams):
                        if stream.opened:
                            await self._catch_up(stream)
            except Exception:
                _log.exception("live_dispatch_failed")

    async def _live(self, pointer: dict[str, Any]) -> None:
        batch_id = pointer["batch"]
        wanting = []
        for stream in self._streams:
            if not stream.opened:
                continue  # its catch-up, still to come, reads this batch from the table
            if batch_id in stream.replayed:
                stream.replayed.discard(batch_id)
            elif stream.filter.wants(pointer):
                wanting.append(stream)
        if wanting:
            event = {"id": batch_id, "items": await self._batches.items(batch_id)}
            for stream in wanting:
                self._deliver(stream, event)

    async def _catch_up(self, stream: Stream[F]) -> None:
        for batch_id in await self._batches.missed(stream.filter, stream.last_id):
            if stream.ended:
                return
            self._deliver(stream, {"id": batch_id, "items": await self._batches.items(batch_id)})
            stream.replayed.add(batch_id)
        if len(stream.replayed) > _MAX_REPLAYED_REMEMBERED:
            stream.replayed.clear()

    def _deliver(self, stream: Stream[F], event: dict[str, Any]) -> None:
        if stream.ended:
            return
        try:
            stream.queue.put_nowait(event)
        except asyncio.QueueFull:
            _log.info("live_stream_too_slow", user_id=str(stream.user_id))
            self._drops.inc()
            self._end(stream)
            return
        stream.last_id = max(stream.last_id, event["id"])

    def _end(self, stream: Stream[F]) -> None:
        """Cuts a stream off: what it has not taken is dropped, and it ends."""
        self.close(stream)
        while not stream.queue.empty():
            stream.queue.get_nowait()
        stream.queue.put_nowait(CLOSED)
