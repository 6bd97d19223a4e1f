import asyncpg
import pytest

from backend_common.db import Database, TransactionMismatch, create_pool


@pytest.fixture
async def database(scratch_database):
    pool = await create_pool(await scratch_database(), min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body jsonb NOT NULL)")
    yield Database(pool)
    await pool.close()


async def test_jsonb_round_trips_python_values(database):
    body = {"params": {"lr": 0.001, "layers": [64, 64]}, "tags": ["a", "b"], "ok": True}

    async with database.transaction() as conn:
        await conn.execute("INSERT INTO notes (id, body) VALUES (1, $1)", body)
    async with database.connection() as conn:
        stored = await conn.fetchval("SELECT body FROM notes WHERE id = 1")
        lr = await conn.fetchval("SELECT (body -> 'params' ->> 'lr')::float FROM notes")

    assert stored == body
    assert lr == 0.001


async def insert_twice(database: Database) -> None:
    async with database.transaction() as conn:
        await conn.execute("INSERT INTO notes (id, body) VALUES (1, '{}')")
        await conn.execute("INSERT INTO notes (id, body) VALUES (1, '{}')")


async def test_transaction_rolls_back_on_error(database):
    with pytest.raises(asyncpg.UniqueViolationError):
        await insert_twice(database)

    async with database.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notes") == 0


async def test_readonly_transaction_refuses_writes(database):
    async with database.transaction(readonly=True) as conn:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("INSERT INTO notes (id, body) VALUES (1, '{}')")


async def test_transaction_inside_unit_of_work_joins_it(database):
    async with database.unit_of_work() as outer:
        async with database.transaction() as inner:
            await inner.execute("INSERT INTO notes (id, body) VALUES (1, '{}')")
        assert inner is outer
        await outer.execute("INSERT INTO notes (id, body) VALUES (2, '{}')")

    async with database.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notes") == 2


@pytest.mark.parametrize(
    "settings",
    [{"isolation": "repeatable_read"}, {"isolation": "serializable"}, {"readonly": True}],
)
async def test_transaction_with_other_settings_inside_unit_of_work_is_refused(database, settings):
    async def write_then_nest() -> None:
        async with database.unit_of_work() as conn:
            await conn.execute("INSERT INTO notes (id, body) VALUES (1, '{}')")
            async with database.transaction(**settings):
                pass

    with pytest.raises(TransactionMismatch):
        await write_then_nest()

    async with database.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notes") == 0
