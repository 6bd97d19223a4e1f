"""POST /api/v1/experiments:batch-status and :bulk-tags: all or nothing, the failures per
experiment, an audit row each."""

import uuid

import pytest

from tests.experiment.factories import (
    audit_count,
    audit_rows,
    create_experiment,
    create_run_in_status,
)
from tests.problems import assert_problem

BATCH_STATUS = "/api/v1/experiments:batch-status"
BULK_TAGS = "/api/v1/experiments:bulk-tags"


def stored(pgsql):
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute("SELECT id::text, status, tags, updated_at FROM experiments ORDER BY id")
        return {row["id"]: dict(row) for row in cursor}


async def post(client, user, path, body):
    return await client.post(path, json=body, headers=user.headers)


def failures(problem):
    return {error["experiment_id"]: error["code"] for error in problem["errors"]}


@pytest.fixture
async def pair(client, editor, project_id):
    return [await create_experiment(client, editor, project_id) for _ in "ab"]


async def test_batch_status_changes_every_experiment_and_audits_each(client, editor, pair, pgsql):
    ids = [experiment["id"] for experiment in pair]
    response = await post(
        client, editor, BATCH_STATUS, {"experiment_ids": ids, "status": "running"}
    )

    assert response.status == 200, await response.text()
    assert [item["id"] for item in (await response.json())["items"]] == ids
    assert all(stored(pgsql)[experiment_id]["status"] == "running" for experiment_id in ids)
    for experiment_id in ids:
        entries = audit_rows(pgsql, experiment_id)
        assert [entry["action"] for entry in entries][-1] == "experiment.status_changed"
        assert (entries[-1]["before"]["status"], entries[-1]["after"]["status"]) == (
            "draft",
            "running",
        )


async def test_one_refusal_changes_nothing_and_names_each_failure(
    client, editor, auth_stub, pair, pgsql
):
    busy = await create_experiment(client, editor, pair[0]["project_id"])
    await post(client, editor, BATCH_STATUS, {"experiment_ids": [busy["id"]], "status": "running"})
    await create_run_in_status(client, editor, busy["id"], "running")
    other_project = uuid.uuid4()
    stranger = auth_stub.member(other_project, "editor")
    elsewhere = await create_experiment(client, stranger, other_project)
    missing = str(uuid.uuid4())
    before, audited = stored(pgsql), audit_count(pgsql)

    ids = [pair[0]["id"], busy["id"], elsewhere["id"], missing]
    response = await post(
        client, editor, BATCH_STATUS, {"experiment_ids": ids, "status": "finished"}
    )

    problem = await assert_problem(response, 409, "batch_failed")
    assert failures(problem) == {
        pair[0]["id"]: "invalid_transition",  # a draft cannot finish
        busy["id"]: "experiment_has_running_runs",
        elsewhere["id"]: "experiment_not_found",  # not in the caller's projects
        missing: "experiment_not_found",
    }
    assert problem["detail"] == "4 of the experiments cannot take the change; nothing changed."
    assert stored(pgsql) == before
    assert audit_count(pgsql) == audited


async def test_a_viewer_is_refused_for_each_experiment(client, auth_stub, project_id, pair, pgsql):
    viewer = auth_stub.member(project_id, "viewer")
    before = stored(pgsql)
    ids = [experiment["id"] for experiment in pair]

    response = await post(client, viewer, BULK_TAGS, {"experiment_ids": ids, "add": ["x"]})

    problem = await assert_problem(response, 409, "batch_failed")
    assert set(failures(problem).values()) == {"forbidden"}
    assert stored(pgsql) == before


async def test_bulk_tags_add_and_remove_keep_order_and_audit(client, editor, project_id, pgsql):
    first = await create_experiment(client, editor, project_id, tags=["aero", "old"])
    second = await create_experiment(client, editor, project_id, tags=[])
    ids = [first["id"], second["id"], first["id"]]  # a repeated id counts once

    response = await post(
        client,
        editor,
        BULK_TAGS,
        {"experiment_ids": ids, "add": ["rev2", "aero"], "remove": ["old"]},
    )

    assert response.status == 200, await response.text()
    assert [item["id"] for item in (await response.json())["items"]] == ids[:2]
    assert stored(pgsql)[first["id"]]["tags"] == ["aero", "rev2"]
    assert stored(pgsql)[second["id"]]["tags"] == ["rev2", "aero"]
    assert audit_rows(pgsql, first["id"])[-1]["action"] == "experiment.updated"


async def test_bulk_tags_refuse_an_archived_experiment(client, editor, project_id, pgsql):
    archived = await create_experiment(client, editor, project_id)
    await post(
        client, editor, BATCH_STATUS, {"experiment_ids": [archived["id"]], "status": "archived"}
    )
    other = await create_experiment(client, editor, project_id)
    before = stored(pgsql)

    response = await post(
        client, editor, BULK_TAGS, {"experiment_ids": [other["id"], archived["id"]], "set": ["x"]}
    )

    problem = await assert_problem(response, 409, "batch_failed")
    assert failures(problem) == {archived["id"]: "experiment_archived"}
    assert stored(pgsql) == before


@pytest.mark.parametrize(
    "body",
    [
        {"experiment_ids": [], "status": "running"},
        {"experiment_ids": ["not-a-uuid"], "status": "running"},
        {"experiment_ids": [str(uuid.uuid4())], "status": "paused"},
        {"experiment_ids": [str(uuid.uuid4())], "status": "running", "extra": 1},
        {"experiment_ids": [str(uuid.uuid4())] * 501, "status": "running"},
    ],
    ids=["empty", "bad-id", "bad-status", "unknown-field", "too-many"],
)
async def test_batch_status_bad_bodies_are_422(client, editor, body):
    await assert_problem(await post(client, editor, BATCH_STATUS, body), 422, "validation_failed")


@pytest.mark.parametrize(
    "body",
    [
        {"experiment_ids": [str(uuid.uuid4())]},
        {"experiment_ids": [str(uuid.uuid4())], "set": ["a"], "add": ["b"]},
        {"experiment_ids": [str(uuid.uuid4())], "add": ["bad tag!"]},
    ],
    ids=["nothing", "set-and-add", "bad-tag"],
)
async def test_bulk_tags_bad_bodies_are_422(client, editor, body):
    await assert_problem(await post(client, editor, BULK_TAGS, body), 422, "validation_failed")


async def test_no_token_and_malformed_json(client, editor):
    body = {"experiment_ids": [str(uuid.uuid4())], "status": "running"}
    await assert_problem(await client.post(BATCH_STATUS, json=body), 401, "unauthorized")
    response = await client.post(
        BULK_TAGS, data=b"{", headers={**editor.headers, "Content-Type": "application/json"}
    )
    await assert_problem(response, 400, "malformed_json")
