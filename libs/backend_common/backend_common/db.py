import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import asyncpg
import orjson
import structlog

_log = structlog.get_logger(__name__)
T = TypeVar("T")

# What "PostgreSQL is unreachable, restarting or hung" looks like through asyncpg (with a timeout
# around the call for "hung").
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)


async def within(seconds: float, work: Awaitable[T]) -> T:
    """The result of `work`, or TimeoutError after `seconds`.

    Past the deadline the work goes on in the background rather than being cancelled: against a
    hung server a cancellation (and the rollback after it) waits as long as the work would. Its
    late outcome is only logged, so the work must be safe to finish late (or be repeated).
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        task.add_done_callback(_log_late_outcome)
        raise


def _log_late_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.warning("late_database_work_failed", error=repr(task.exception()))


# jsonb's binary format is a version byte (1) and the JSON text; json's is the text alone.
# Binary codecs also serve COPY (copy_records_to_table), which has no text path.
_JSONB_VERSION = b"\x01"


def _encode_jsonb(value: object) -> bytes:
    return _JSONB_VERSION + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> object:
    return orjson.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_encode_jsonb, decoder=_decode_jsonb, format="binary"
    )
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=orjson.dumps, decoder=orjson.loads, format="binary"
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook. Our code leaves no session state on pooled connections (no SET, LISTEN or
    advisory lock outlives one use), so the reset round trip asyncpg makes on every release is
    skipped; an open transaction is still rolled back by the pool itself."""


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float | None = None,
) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        init=_init_connection,
        reset=_keep_session,
        # Instants that PostgreSQL renders itself (e.g. inside jsonb) come out in UTC too. No JIT:
        # compiling costs tens of milliseconds, more than the short queries of a service gain.
        server_settings={"timezone": "UTC", "jit": "off"},
    )


# The transaction of the current unit of work (see Database.unit_of_work), if one is open.
_AMBIENT: ContextVar[asyncpg.Connection | None] = ContextVar("ambient_transaction", default=None)

_DEFAULT_ISOLATION = "read_committed"


class TransactionMismatch(RuntimeError):
    """A transaction asked for inside a unit of work with other isolation or readonly settings
    than the unit of work's: joining it would silently drop them. A programming error."""


class Database:
    """The pool of one service; domain code opens transactions through it.

    Inside `unit_of_work()` (a request-wide transaction, e.g. for Idempotency-Key), the domain's
    `transaction()` and `connection()` join that transaction instead of opening their own: its
    changes commit together with whatever the unit of work writes after the domain returns. A
    `transaction()` that asks for another isolation level, or for a read-only one, cannot join
    it and raises TransactionMismatch rather than run with settings it did not ask for.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        ambient = _AMBIENT.get()
        if ambient is not None:
            yield ambient
            return
        async with self.pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(
        self, *, isolation: str = _DEFAULT_ISOLATION, readonly: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        ambient = _AMBIENT.get()
        if ambient is not None:
            if isolation != _DEFAULT_ISOLATION or readonly:
                raise TransactionMismatch(
                    f"A {isolation}{' read-only' if readonly else ''} transaction cannot join "
                    f"the unit of work's {_DEFAULT_ISOLATION} read-write one."
                )
            yield ambient
            return
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation=isolation, readonly=readonly),
        ):
            yield conn

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[asyncpg.Connection]:
        """One read-committed transaction for everything the current task does with this
        database."""
        async with self.pool.acquire() as conn, conn.transaction(isolation=_DEFAULT_ISOLATION):
            token = _AMBIENT.set(conn)
            try:
                yield conn
            finally:
                _AMBIENT.reset(token)

    async def close(self) -> None:
        await self.pool.close()
