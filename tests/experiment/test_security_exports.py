"""Exports under attack: slow readers (they read a few bytes and stall) used to hold a pooled
connection each for as long as they liked, until nothing else of the service could reach the
database. Exports of runs and experiments now have their own small budget of connections, a
per-user cap, a time limit and a row cap."""

import asyncio
import time
from typing import Any

import pytest

from experiment_service.app import create_app
from tests.experiment.factories import create_experiment, create_run, expect
from tests.plugins.waiting import eventually
from tests.problems import assert_problem

RUNS = "/api/v1/runs"
EXPORT = "/api/v1/runs/export"
BIG = 4_000  # runs of ~3 kB each: ~12 MB of CSV, more than the socket buffers hold


@pytest.fixture
def experiment_app(pgsql, aiohttp_client, make_settings, clock):
    """The experiment service with other settings."""

    async def start(**settings: Any):
        return await aiohttp_client(
            create_app(make_settings("experiment", **settings), clock=clock)
        )

    return start


@pytest.fixture
async def exported(experiment_app, editor, project_id, pgsql):
    """BIG runs inserted straight into the table, each with ~3 kB of params; the query
    selecting them."""
    client = await experiment_app()
    experiment = await create_experiment(client, editor, project_id)
    pgsql["experiment"].cursor().execute(
        """
        INSERT INTO runs (experiment_id, project_id, name, params, created_by)
        SELECT %(experiment_id)s, %(project_id)s, 'run ' || n,
               jsonb_build_object('pad', repeat('x', 3000)), %(user_id)s
        FROM generate_series(1, %(count)s) AS n
        """,
        {
            "experiment_id": experiment["id"],
            "project_id": str(project_id),
            "user_id": str(editor.id),
            "count": BIG,
        },
    )
    return [("project_id", str(project_id))]


async def test_slow_readers_do_not_starve_the_other_requests(
    experiment_app, exported, owner, viewer, slow_readers
):
    client = await experiment_app(db_pool_max_size=3)

    readers = [await slow_readers(client, user, EXPORT, exported) for user in (owner, viewer) * 2]
    started = time.perf_counter()
    page = await asyncio.wait_for(
        client.get(RUNS, params=[*exported, ("limit", "10")], headers=owner.headers), 5
    )

    assert len((await expect(page, 200))["items"]) == 10
    assert time.perf_counter() - started < 2
    assert sorted(reader.status for reader in readers) == [200, 200, 503, 503]
    for busy in (reader for reader in readers if reader.status == 503):
        answer = await busy.until(b"exports_busy")
        assert b"\r\nRetry-After: 5\r\n" in answer


async def test_one_user_runs_a_few_exports_at_once(
    experiment_app, exported, owner, viewer, slow_readers
):
    client = await experiment_app(exports_per_user=1, export_connections=4)
    first = await slow_readers(client, owner, EXPORT, exported)

    second = await client.get("/api/v1/experiments/export", params=exported, headers=owner.headers)
    other = await client.get(EXPORT, params=[*exported, ("format", "csv")], headers=viewer.headers)

    assert first.status == 200
    await assert_problem(second, 429, "too_many_exports")
    assert second.headers["Retry-After"] == "5"
    assert other.status == 200
    assert len((await other.text()).splitlines()) == BIG + 1


async def test_a_slow_reader_is_cut_off_at_the_time_limit(
    experiment_app, exported, owner, viewer, slow_readers
):
    client = await experiment_app(export_max_seconds=3, export_connections=1)
    stalled = await slow_readers(client, owner, EXPORT, exported)

    busy = await client.get(EXPORT, params=exported, headers=viewer.headers)

    assert stalled.status == 200
    await assert_problem(busy, 503, "exports_busy")

    async def slot_free() -> bool:
        response = await client.get(
            EXPORT, params=[*exported, ("q", "run 4000")], headers=viewer.headers
        )
        await response.read()
        return response.status == 200

    # The one slot comes free only when the stalled export ends, which, as its client reads
    # nothing, only the time limit does; reading the rest before then would let it finish.
    # A time limit of seconds, not less: on a loaded machine the second request must still find
    # the slot taken.
    await eventually(slot_free, within=15, what="the export slot to come free")
    assert await stalled.drained()  # the server ended it


async def test_the_row_cap_cuts_an_export_and_says_so(experiment_app, editor, viewer, project_id):
    client = await experiment_app(export_max_rows=5)
    experiment = await create_experiment(client, editor, project_id)
    for n in range(8):
        tags = ["first-five"] if n < 5 else []
        await create_run(client, editor, experiment["id"], name=f"run {n}", tags=tags)
    scope = [("project_id", str(project_id)), ("sort", "name"), ("format", "json")]

    cut = await client.get(EXPORT, params=scope, headers=viewer.headers)
    whole = await client.get(
        EXPORT, params=[*scope, ("tags", "first-five")], headers=viewer.headers
    )
    experiments = await client.get(
        "/api/v1/experiments/export", params=scope, headers=viewer.headers
    )

    assert [run["name"] for run in await expect(cut, 200)] == [f"run {n}" for n in range(5)]
    assert cut.headers["Export-Truncated"] == "row_limit"
    assert cut.headers["Export-Row-Limit"] == "5"
    assert len(await expect(whole, 200)) == 5
    assert whole.headers["Export-Row-Limit"] == "5"
    assert "Export-Truncated" not in whole.headers
    assert len(await expect(experiments, 200)) == 1
    assert "Export-Truncated" not in experiments.headers
