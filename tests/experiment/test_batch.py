"""POST /api/v1/runs:batch-status and /api/v1/runs:bulk-tags: all-or-nothing, per-run failures."""

import uuid

import pytest

from tests.experiment.factories import (
    audit_count,
    audit_rows,
    create_experiment,
    create_run,
    create_run_in_status,
    start_capture,
)
from tests.problems import assert_problem
from tests.tokens import SigningKey

BATCH_STATUS = "/api/v1/runs:batch-status"
BULK_TAGS = "/api/v1/runs:bulk-tags"


@pytest.fixture
async def experiment(client, editor, project_id):
    return await create_experiment(client, editor, project_id)


def _runs(pgsql):
    """Every run's mutable state, by id: what must not change when a batch fails."""
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT id, status, tags, started_at, finished_at, duration_seconds, updated_at"
            " FROM runs ORDER BY id"
        )
        return {row["id"]: dict(row) for row in cursor}


async def _post(client, user, path, body):
    return await client.post(path, json=body, headers=user.headers)


def _failures(problem):
    return {error["run_id"]: error["code"] for error in problem["errors"]}


# --- batch-status ---------------------------------------------------------------------------


async def test_batch_status_all_allowed_changes_every_run_and_audits_each(
    client, editor, experiment, pgsql
):
    runs = [await create_run(client, editor, experiment["id"]) for _ in range(3)]
    ids = [run["id"] for run in runs]

    response = await _post(client, editor, BATCH_STATUS, {"run_ids": ids, "status": "running"})

    assert response.status == 200, await response.text()
    items = (await response.json())["items"]
    assert [item["id"] for item in items] == ids
    assert all(item["status"] == "running" and item["started_at"] for item in items)
    stored = _runs(pgsql)
    assert all(stored[run_id]["status"] == "running" for run_id in ids)
    for run_id in ids:
        entries = audit_rows(pgsql, run_id)
        assert [entry["action"] for entry in entries] == ["run.created", "run.status_changed"]
        assert entries[-1]["before"]["status"] == "draft"
        assert entries[-1]["after"]["status"] == "running"
        assert entries[-1]["actor_role"] == "editor"


async def test_batch_status_to_finished_sets_finished_at_and_duration(client, editor, experiment):
    runs = [await create_run_in_status(client, editor, experiment["id"], "running") for _ in "ab"]

    response = await _post(
        client, editor, BATCH_STATUS, {"run_ids": [r["id"] for r in runs], "status": "failed"}
    )

    assert response.status == 200, await response.text()
    for item in (await response.json())["items"]:
        assert item["status"] == "failed"
        assert item["finished_at"] is not None
        assert item["duration_seconds"] >= 0


async def test_batch_status_with_one_unknown_id_returns_409_and_changes_nothing(
    client, editor, experiment, pgsql
):
    runs = [await create_run(client, editor, experiment["id"]) for _ in range(2)]
    unknown = str(uuid.uuid4())
    before, audited = _runs(pgsql), audit_count(pgsql)

    response = await _post(
        client,
        editor,
        BATCH_STATUS,
        {"run_ids": [runs[0]["id"], unknown, runs[1]["id"]], "status": "running"},
    )

    problem = await assert_problem(response, 409, "batch_failed")
    assert problem["errors"] == [
        {"run_id": unknown, "code": "run_not_found", "detail": problem["errors"][0]["detail"]}
    ]
    assert _runs(pgsql) == before
    assert audit_count(pgsql) == audited


async def test_batch_status_with_several_failing_runs_names_each_and_changes_nothing(
    client, auth_stub, editor, experiment, pgsql
):
    good = await create_run(client, editor, experiment["id"])
    succeeded = await create_run_in_status(client, editor, experiment["id"], "succeeded")
    capturing = await create_run_in_status(client, editor, experiment["id"], "running")
    await start_capture(client, editor, capturing["id"])
    already = await create_run_in_status(client, editor, experiment["id"], "running")
    viewed_project = uuid.uuid4()
    auth_stub.grant(editor, viewed_project, "editor")
    viewed_experiment = await create_experiment(client, editor, viewed_project)
    viewed = await create_run(client, editor, viewed_experiment["id"])
    auth_stub.grant(editor, viewed_project, "viewer")
    hidden_project = uuid.uuid4()
    hidden_owner = auth_stub.member(hidden_project, "owner")
    hidden_experiment = await create_experiment(client, hidden_owner, hidden_project)
    hidden = await create_run(client, hidden_owner, hidden_experiment["id"])
    unknown = str(uuid.uuid4())
    before, audited = _runs(pgsql), audit_count(pgsql)
    run_ids = [
        good["id"],
        succeeded["id"],
        capturing["id"],
        already["id"],
        viewed["id"],
        hidden["id"],
        unknown,
    ]

    response = await _post(client, editor, BATCH_STATUS, {"run_ids": run_ids, "status": "running"})

    problem = await assert_problem(response, 409, "batch_failed")
    assert _failures(problem) == {
        succeeded["id"]: "invalid_transition",
        capturing["id"]: "invalid_transition",
        already["id"]: "invalid_transition",
        viewed["id"]: "forbidden",
        hidden["id"]: "run_not_found",
        unknown: "run_not_found",
    }
    assert all(error["detail"] for error in problem["errors"])
    # A run of another project looks exactly like a missing one.
    details = {error["run_id"]: error["detail"] for error in problem["errors"]}
    assert details[hidden["id"]] == details[unknown]
    assert "Secret" not in str(problem)
    assert _runs(pgsql) == before
    assert audit_count(pgsql) == audited


async def test_batch_status_finish_with_running_capture_names_the_rule(
    client, editor, experiment, pgsql
):
    free = await create_run_in_status(client, editor, experiment["id"], "running")
    capturing = await create_run_in_status(client, editor, experiment["id"], "running")
    await start_capture(client, editor, capturing["id"])
    before = _runs(pgsql)

    response = await _post(
        client,
        editor,
        BATCH_STATUS,
        {"run_ids": [free["id"], capturing["id"]], "status": "succeeded"},
    )

    problem = await assert_problem(response, 409, "batch_failed")
    assert _failures(problem) == {capturing["id"]: "run_has_active_capture"}
    assert _runs(pgsql) == before


async def test_batch_status_by_viewer_returns_forbidden_for_each_run(
    client, auth_stub, editor, project_id, experiment, pgsql
):
    runs = [await create_run(client, editor, experiment["id"]) for _ in range(2)]
    viewer = auth_stub.member(project_id, "viewer")
    before = _runs(pgsql)

    response = await _post(
        client, viewer, BATCH_STATUS, {"run_ids": [r["id"] for r in runs], "status": "running"}
    )

    problem = await assert_problem(response, 409, "batch_failed")
    assert _failures(problem) == {run["id"]: "forbidden" for run in runs}
    assert _runs(pgsql) == before


async def test_batch_status_across_projects_as_editor_of_both_audits_with_each_project(
    client, auth_stub, editor, experiment, pgsql
):
    other_project = uuid.uuid4()
    auth_stub.grant(editor, other_project, "owner")
    other_experiment = await create_experiment(client, editor, other_project)
    first = await create_run(client, editor, experiment["id"])
    second = await create_run(client, editor, other_experiment["id"])

    response = await _post(
        client, editor, BATCH_STATUS, {"run_ids": [first["id"], second["id"]], "status": "running"}
    )

    assert response.status == 200, await response.text()
    [first_entry] = audit_rows(pgsql, first["id"])[1:]
    [second_entry] = audit_rows(pgsql, second["id"])[1:]
    assert (first_entry["project_id"], first_entry["actor_role"]) == (
        experiment["project_id"],
        "editor",
    )
    assert (second_entry["project_id"], second_entry["actor_role"]) == (str(other_project), "owner")


async def test_batch_status_with_duplicate_ids_changes_each_run_once(
    client, editor, experiment, pgsql
):
    first = await create_run(client, editor, experiment["id"])
    second = await create_run(client, editor, experiment["id"])
    run_ids = [first["id"], second["id"], first["id"], first["id"]]

    response = await _post(client, editor, BATCH_STATUS, {"run_ids": run_ids, "status": "running"})

    assert response.status == 200, await response.text()
    assert [item["id"] for item in (await response.json())["items"]] == [first["id"], second["id"]]
    for run in (first, second):
        actions = [entry["action"] for entry in audit_rows(pgsql, run["id"])]
        assert actions == ["run.created", "run.status_changed"]


async def test_batch_status_with_duplicate_unknown_id_reports_it_once(client, editor, experiment):
    unknown = str(uuid.uuid4())

    response = await _post(
        client, editor, BATCH_STATUS, {"run_ids": [unknown, unknown], "status": "running"}
    )

    problem = await assert_problem(response, 409, "batch_failed")
    assert [error["run_id"] for error in problem["errors"]] == [unknown]


# --- bulk-tags ------------------------------------------------------------------------------


async def test_bulk_tags_add_and_remove_changes_every_run_and_audits_each(
    client, editor, experiment, pgsql
):
    first = await create_run(client, editor, experiment["id"], tags=["keep", "old"])
    second = await create_run(client, editor, experiment["id"], tags=["old"])

    response = await _post(
        client,
        editor,
        BULK_TAGS,
        {"run_ids": [first["id"], second["id"]], "add": ["new", "keep"], "remove": ["old"]},
    )

    assert response.status == 200, await response.text()
    items = {item["id"]: item["tags"] for item in (await response.json())["items"]}
    assert items == {first["id"]: ["keep", "new"], second["id"]: ["new", "keep"]}
    stored = _runs(pgsql)
    assert stored[first["id"]]["tags"] == ["keep", "new"]
    assert stored[second["id"]]["tags"] == ["new", "keep"]
    entry = audit_rows(pgsql, first["id"])[-1]
    assert entry["action"] == "run.tags_updated"
    assert (entry["before"], entry["after"]) == (
        {"tags": ["keep", "old"]},
        {"tags": ["keep", "new"]},
    )
    assert [e["action"] for e in audit_rows(pgsql, second["id"])][1:] == ["run.tags_updated"]


async def test_bulk_tags_set_replaces_tags_without_duplicates(client, editor, experiment, pgsql):
    first = await create_run(client, editor, experiment["id"], tags=["a", "b"])
    second = await create_run(client, editor, experiment["id"])

    response = await _post(
        client,
        editor,
        BULK_TAGS,
        {"run_ids": [first["id"], second["id"]], "set": ["x", "y", "x"]},
    )

    assert response.status == 200, await response.text()
    stored = _runs(pgsql)
    assert stored[first["id"]]["tags"] == ["x", "y"]
    assert stored[second["id"]]["tags"] == ["x", "y"]


async def test_bulk_tags_set_empty_clears_tags(client, editor, experiment, pgsql):
    run = await create_run(client, editor, experiment["id"], tags=["a"])

    response = await _post(client, editor, BULK_TAGS, {"run_ids": [run["id"]], "set": []})

    assert response.status == 200, await response.text()
    assert _runs(pgsql)[run["id"]]["tags"] == []


async def test_bulk_tags_that_change_nothing_still_audits_a_tags_update_per_run(
    client, editor, experiment, pgsql
):
    tagged = await create_run(client, editor, experiment["id"], tags=["gpu"])
    untagged = await create_run(client, editor, experiment["id"])

    response = await _post(
        client, editor, BULK_TAGS, {"run_ids": [tagged["id"], untagged["id"]], "add": ["gpu"]}
    )

    assert response.status == 200, await response.text()
    for run in (tagged, untagged):
        entries = audit_rows(pgsql, run["id"])
        assert [entry["action"] for entry in entries] == ["run.created", "run.tags_updated"]


async def test_bulk_tags_with_one_unknown_id_returns_409_and_changes_nothing(
    client, editor, experiment, pgsql
):
    run = await create_run(client, editor, experiment["id"], tags=["a"])
    unknown = str(uuid.uuid4())
    before, audited = _runs(pgsql), audit_count(pgsql)

    response = await _post(
        client, editor, BULK_TAGS, {"run_ids": [run["id"], unknown], "add": ["b"]}
    )

    problem = await assert_problem(response, 409, "batch_failed")
    assert _failures(problem) == {unknown: "run_not_found"}
    assert _runs(pgsql) == before
    assert audit_count(pgsql) == audited


async def test_bulk_tags_with_run_of_viewed_project_returns_forbidden_and_changes_nothing(
    client, auth_stub, editor, experiment, pgsql
):
    mine = await create_run(client, editor, experiment["id"])
    viewed_project = uuid.uuid4()
    owner = auth_stub.member(viewed_project, "owner")
    auth_stub.grant(editor, viewed_project, "viewer")
    viewed_experiment = await create_experiment(client, owner, viewed_project)
    viewed = await create_run(client, owner, viewed_experiment["id"])
    before = _runs(pgsql)

    response = await _post(
        client, editor, BULK_TAGS, {"run_ids": [mine["id"], viewed["id"]], "set": ["x"]}
    )

    problem = await assert_problem(response, 409, "batch_failed")
    assert _failures(problem) == {viewed["id"]: "forbidden"}
    assert _runs(pgsql) == before


async def test_bulk_tags_on_archived_run_is_refused(client, editor, experiment, pgsql):
    run = await create_run_in_status(client, editor, experiment["id"], "archived")

    response = await _post(client, editor, BULK_TAGS, {"run_ids": [run["id"]], "add": ["old"]})

    body = await assert_problem(response, 409, "batch_failed")
    assert body["errors"] == [
        {
            "run_id": run["id"],
            "code": "run_archived",
            "detail": "The run is archived: it no longer changes.",
        }
    ]
    assert _runs(pgsql)[run["id"]]["tags"] == []


async def test_bulk_tags_with_duplicate_ids_audits_each_run_once(client, editor, experiment, pgsql):
    run = await create_run(client, editor, experiment["id"])

    response = await _post(client, editor, BULK_TAGS, {"run_ids": [run["id"]] * 3, "add": ["a"]})

    assert response.status == 200, await response.text()
    assert len((await response.json())["items"]) == 1
    assert [e["action"] for e in audit_rows(pgsql, run["id"])] == [
        "run.created",
        "run.tags_updated",
    ]


# --- bad input ------------------------------------------------------------------------------

RUN_ID = str(uuid.uuid4())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"run_ids": [RUN_ID], "set": ["a"], "add": ["b"]}, ""),
        ({"run_ids": [RUN_ID], "set": ["a"], "remove": ["b"]}, ""),
        ({"run_ids": [RUN_ID]}, ""),
        ({"run_ids": [RUN_ID], "add": [], "remove": []}, ""),
        ({"run_ids": [], "add": ["a"]}, "run_ids"),
        ({"add": ["a"]}, "run_ids"),
        ({"run_ids": [RUN_ID] * 501, "add": ["a"]}, "run_ids"),
        ({"run_ids": ["not-a-uuid"], "add": ["a"]}, "run_ids.0"),
        ({"run_ids": RUN_ID, "add": ["a"]}, "run_ids"),
        ({"run_ids": [RUN_ID], "add": [f"t{i}" for i in range(51)]}, "add"),
        ({"run_ids": [RUN_ID], "set": ["bad tag"]}, "set.0"),
        ({"run_ids": [RUN_ID], "add": "a"}, "add"),
        ({"run_ids": [RUN_ID], "add": ["a"], "status": "running"}, "status"),
    ],
    ids=[
        "set_and_add",
        "set_and_remove",
        "no_change",
        "empty_add_and_remove",
        "no_ids",
        "missing_ids",
        "too_many_ids",
        "invalid_uuid",
        "ids_not_a_list",
        "too_many_tags",
        "invalid_tag",
        "add_not_a_list",
        "unknown_field",
    ],
)
async def test_bulk_tags_invalid_body_returns_422(client, editor, body, field):
    response = await _post(client, editor, BULK_TAGS, body)

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"run_ids": [RUN_ID]}, "status"),
        ({"run_ids": [RUN_ID], "status": "done"}, "status"),
        ({"run_ids": [RUN_ID], "status": None}, "status"),
        ({"run_ids": [], "status": "running"}, "run_ids"),
        ({"run_ids": [RUN_ID, "x"], "status": "running"}, "run_ids.1"),
        (
            {"run_ids": [RUN_ID], "status": "running", "started_at": "2024-01-01T00:00:00Z"},
            "started_at",
        ),
        ({"run_ids": [RUN_ID], "status": "running", "tags": ["a\x00"]}, "tags.0"),
    ],
    ids=["no_status", "bad_status", "null_status", "no_ids", "bad_uuid", "server_field", "nul"],
)
async def test_batch_status_invalid_body_returns_422(client, editor, body, field):
    response = await _post(client, editor, BATCH_STATUS, body)

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem


@pytest.mark.parametrize("path", [BATCH_STATUS, BULK_TAGS])
async def test_batch_malformed_json_returns_400(client, editor, path):
    response = await client.post(
        path,
        data=b'{"run_ids": [',
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await assert_problem(response, 400, "malformed_json")


@pytest.mark.parametrize("path", [BATCH_STATUS, BULK_TAGS])
async def test_batch_huge_body_returns_413(client, editor, path):
    body = b'{"run_ids": ["' + b'", "'.join([RUN_ID.encode()] * 30_000) + b'"], "add": ["a"]}'

    response = await client.post(
        path, data=body, headers={**editor.headers, "Content-Type": "application/json"}
    )

    await assert_problem(response, 413, "payload_too_large")


@pytest.mark.parametrize("kind", ["missing", "forged", "expired"])
@pytest.mark.parametrize(
    ("path", "change"), [(BATCH_STATUS, {"status": "running"}), (BULK_TAGS, {"add": ["a"]})]
)
async def test_batch_without_valid_token_returns_401_and_changes_nothing(
    client, auth_signing_key, editor, experiment, pgsql, path, change, kind
):
    run = await create_run(client, editor, experiment["id"])
    before = _runs(pgsql)
    if kind == "missing":
        headers = {}
    elif kind == "forged":
        forger = SigningKey.generate(kid=auth_signing_key.kid)
        headers = {"Authorization": f"Bearer {forger.mint(str(editor.id))}"}
    else:
        headers = {"Authorization": f"Bearer {auth_signing_key.mint(str(editor.id), ttl=-100)}"}

    response = await client.post(path, json={"run_ids": [run["id"]], **change}, headers=headers)

    await assert_problem(response, 401, "unauthorized")
    assert _runs(pgsql) == before
