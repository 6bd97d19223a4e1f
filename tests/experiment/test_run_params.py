"""POST /api/v1/runs/{id}/params: params merged into a run's under its lock, so that writers
logging at once keep each other's keys."""

import asyncio
import uuid

import pytest

from tests.experiment.factories import (
    audit_rows,
    create_experiment,
    create_run,
    create_run_in_status,
    expect,
)
from tests.problems import assert_problem


@pytest.fixture
async def experiment(client, editor, project_id):
    return await create_experiment(client, editor, project_id)


def merge(client, user, run_id, body):
    return client.post(f"/api/v1/runs/{run_id}/params", json=body, headers=user.headers)


def stored_params(pgsql, run_id):
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute("SELECT params FROM runs WHERE id = %s", (run_id,))
        return cursor.fetchone()["params"]


async def test_given_keys_replace_and_the_others_stay(client, editor, experiment, pgsql):
    run = await create_run(client, editor, experiment["id"], params={"lr": 0.1, "seed": 7})

    merged = await expect(
        await merge(client, editor, run["id"], {"params": {"lr": 0.01, "opt": "adam"}}), 200
    )

    assert merged["params"] == {"lr": 0.01, "seed": 7, "opt": "adam"}
    assert stored_params(pgsql, run["id"]) == merged["params"]
    entry = audit_rows(pgsql, run["id"])[-1]
    assert entry["action"] == "run.updated"
    assert entry["before"]["params"] == {"lr": 0.1, "seed": 7}


async def test_writers_at_once_keep_every_key(client, editor, experiment, pgsql):
    run = await create_run(client, editor, experiment["id"])

    answers = await asyncio.gather(
        *(merge(client, editor, run["id"], {"params": {f"worker_{n}": n}}) for n in range(12))
    )

    assert [answer.status for answer in answers] == [200] * 12
    assert stored_params(pgsql, run["id"]) == {f"worker_{n}": n for n in range(12)}


async def test_an_archived_run_is_read_only(client, editor, experiment, pgsql):
    run = await create_run_in_status(client, editor, experiment["id"], "archived")
    response = await merge(client, editor, run["id"], {"params": {"lr": 1}})
    await assert_problem(response, 409, "run_archived")
    assert stored_params(pgsql, run["id"]) == run["params"]


async def test_who_may_merge(client, auth_stub, editor, project_id, experiment, pgsql):
    run = await create_run(client, editor, experiment["id"])
    viewer = auth_stub.member(project_id, "viewer")
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    body = {"params": {"lr": 1}}

    await assert_problem(await merge(client, viewer, run["id"], body), 403, "forbidden")
    await assert_problem(await merge(client, stranger, run["id"], body), 404, "run_not_found")
    response = await client.post(f"/api/v1/runs/{run['id']}/params", json=body)
    await assert_problem(response, 401, "unauthorized")
    assert stored_params(pgsql, run["id"]) == {}


@pytest.mark.parametrize(
    "body",
    [{"params": {}}, {"params": [1]}, {"params": "lr=1"}, {}, {"params": {"a": 1}, "tags": []}],
    ids=["empty", "list", "string", "missing", "unknown-field"],
)
async def test_bad_bodies_are_422(client, editor, experiment, body):
    run = await create_run(client, editor, experiment["id"])
    await assert_problem(await merge(client, editor, run["id"], body), 422, "validation_failed")


async def test_malformed_json_is_400(client, editor, experiment):
    run = await create_run(client, editor, experiment["id"])
    response = await client.post(
        f"/api/v1/runs/{run['id']}/params",
        data=b'{"params":',
        headers={**editor.headers, "Content-Type": "application/json"},
    )
    await assert_problem(response, 400, "malformed_json")
