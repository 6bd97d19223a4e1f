"""Experiments over HTTP: create, read, change, the status machine and delete."""

import uuid
from datetime import datetime

import pytest

from tests.experiment.factories import (
    audit_rows,
    create_experiment,
    create_run,
    set_experiment_status,
    set_run_status,
)
from tests.problems import assert_problem

# The shortest way from draft to each experiment status.
EXPERIMENT_PATHS = {
    "draft": (),
    "running": ("running",),
    "finished": ("running", "finished"),
    "failed": ("running", "failed"),
    "archived": ("archived",),
}
ALLOWED = {
    ("draft", "running"),
    ("draft", "archived"),
    ("running", "finished"),
    ("running", "failed"),
    ("running", "archived"),
    ("finished", "archived"),
    ("failed", "archived"),
}
REFUSED = sorted(
    (a, b) for a in EXPERIMENT_PATHS for b in EXPERIMENT_PATHS if (a, b) not in ALLOWED
)


def _experiment_row(pgsql, experiment_id):
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT name, status, tags, metadata, owner_id FROM experiments WHERE id = %s",
            (str(experiment_id),),
        )
        row = cursor.fetchone()
    return dict(row) if row else None


async def _in_status(client, user, project_id, status):
    experiment = await create_experiment(client, user, project_id)
    for step in EXPERIMENT_PATHS[status]:
        experiment = await set_experiment_status(client, user, experiment["id"], step)
    return experiment


# --- create, get, list, patch -------------------------------------------------------------


async def test_create_experiment_by_editor_returns_201_with_location_owner_and_audit(
    client, editor, project_id, pgsql
):
    response = await client.post(
        "/api/v1/experiments",
        json={"project_id": str(project_id), "name": "Wind tunnel", "tags": ["aero", "v1"]},
        headers={**editor.headers, "X-Request-Id": "req-create-1"},
    )

    assert response.status == 201, await response.text()
    body = await response.json()
    assert response.headers["Location"] == f"/api/v1/experiments/{body['id']}"
    assert body["owner_id"] == str(editor.id)
    assert body["project_id"] == str(project_id)
    assert body["name"] == "Wind tunnel"
    assert body["tags"] == ["aero", "v1"]
    assert body["status"] == "draft"
    assert body["description"] == ""
    assert body["experiment_type"] is None
    assert body["metadata"] == {}
    [entry] = audit_rows(pgsql, body["id"])
    assert entry["action"] == "experiment.created"
    assert entry["entity_type"] == "experiment"
    assert entry["actor_id"] == str(editor.id)
    assert entry["actor_role"] == "editor"
    assert entry["project_id"] == str(project_id)
    assert entry["request_id"] == "req-create-1"
    assert entry["before"] is None
    assert entry["after"]["name"] == "Wind tunnel"


async def test_create_experiment_with_all_fields_stores_them_as_given(
    client, editor, project_id, pgsql
):
    metadata = {"rig": {"id": 7, "axes": ["x", "y"]}, "ok": True, "ratio": 0.25, "none": None}
    body = await create_experiment(
        client,
        editor,
        project_id,
        name="Ünïcode ✓ name",
        description="d" * 10000,
        tags=["a.b", "c:d", "e/f", "g+h", "i-j", "k_l"],
        experiment_type="t" * 100,
        metadata=metadata,
    )

    assert body["metadata"] == metadata
    assert body["description"] == "d" * 10000
    row = _experiment_row(pgsql, body["id"])
    assert row["metadata"] == metadata
    assert row["name"] == "Ünïcode ✓ name"
    assert row["tags"] == ["a.b", "c:d", "e/f", "g+h", "i-j", "k_l"]


async def test_get_experiment_existing_returns_it(client, editor, project_id):
    created = await create_experiment(client, editor, project_id)

    response = await client.get(f"/api/v1/experiments/{created['id']}", headers=editor.headers)

    assert response.status == 200
    assert await response.json() == created


async def test_get_experiment_unknown_id_returns_404(client, editor):
    response = await client.get(f"/api/v1/experiments/{uuid.uuid4()}", headers=editor.headers)

    await assert_problem(response, 404, "experiment_not_found")


async def test_list_experiments_of_project_returns_only_that_project(
    client, auth_stub, editor, project_id
):
    other_project = uuid.uuid4()
    auth_stub.grant(editor, other_project, "editor")
    mine = [await create_experiment(client, editor, project_id) for _ in range(3)]
    await create_experiment(client, editor, other_project)

    response = await client.get(
        "/api/v1/experiments", params={"project_id": str(project_id)}, headers=editor.headers
    )

    assert response.status == 200, await response.text()
    body = await response.json()
    assert {item["id"] for item in body["items"]} == {item["id"] for item in mine}
    assert body["next_cursor"] is None


async def test_list_experiments_without_project_id_returns_422(client, editor):
    response = await client.get("/api/v1/experiments", headers=editor.headers)

    body = await assert_problem(response, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["project_id"]
    assert body["errors"][0]["in"] == "query"


async def test_update_experiment_fields_changes_them_and_audits_the_diff(
    client, editor, project_id, pgsql
):
    created = await create_experiment(client, editor, project_id, name="old", tags=["a"])
    changes = {
        "name": "new",
        "description": "about it",
        "tags": ["b", "c"],
        "experiment_type": "wind",
        "metadata": {"k": [1, 2]},
    }

    response = await client.patch(
        f"/api/v1/experiments/{created['id']}", json=changes, headers=editor.headers
    )

    assert response.status == 200, await response.text()
    body = await response.json()
    for field, value in changes.items():
        assert body[field] == value
    assert body["status"] == "draft"
    assert body["owner_id"] == created["owner_id"]
    assert datetime.fromisoformat(body["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )
    fetched = await client.get(f"/api/v1/experiments/{created['id']}", headers=editor.headers)
    assert await fetched.json() == body
    entry = audit_rows(pgsql, created["id"])[-1]
    assert entry["action"] == "experiment.updated"
    assert entry["before"] == {
        "name": "old",
        "description": "",
        "tags": ["a"],
        "experiment_type": None,
        "metadata": {},
    }
    assert entry["after"] == changes


async def test_update_experiment_type_to_null_clears_it(client, editor, project_id):
    created = await create_experiment(client, editor, project_id, experiment_type="wind")

    response = await client.patch(
        f"/api/v1/experiments/{created['id']}",
        json={"experiment_type": None},
        headers=editor.headers,
    )

    assert response.status == 200
    assert (await response.json())["experiment_type"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": None},
        {"description": None},
        {"tags": None},
        {"metadata": None},
        {"status": None},
        {"owner_id": "6f1c0a52-3d1e-4c7a-9b8e-2f0d4e5a6b7c"},
        {"project_id": "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"status": "done"},
    ],
    ids=lambda body: ",".join(f"{k}={v}" for k, v in body.items()) or "empty",
)
async def test_update_experiment_invalid_body_returns_422_and_changes_nothing(
    client, editor, project_id, pgsql, body
):
    created = await create_experiment(client, editor, project_id, name="kept")

    response = await client.patch(
        f"/api/v1/experiments/{created['id']}", json=body, headers=editor.headers
    )

    await assert_problem(response, 422, "validation_failed")
    row = _experiment_row(pgsql, created["id"])
    assert (row["name"], row["status"], row["owner_id"]) == ("kept", "draft", str(editor.id))
    assert len(audit_rows(pgsql, created["id"])) == 1


# --- the status machine ---------------------------------------------------------------------


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
async def test_update_experiment_status_allowed_transition_changes_it_and_audits(
    client, editor, project_id, pgsql, current, target
):
    experiment = await _in_status(client, editor, project_id, current)
    audited = len(audit_rows(pgsql, experiment["id"]))

    body = await set_experiment_status(client, editor, experiment["id"], target)

    assert body["status"] == target
    assert _experiment_row(pgsql, experiment["id"])["status"] == target
    entries = audit_rows(pgsql, experiment["id"])
    assert len(entries) == audited + 1
    assert entries[-1]["action"] == "experiment.status_changed"
    assert entries[-1]["before"] == {"status": current}
    assert entries[-1]["after"] == {"status": target}


@pytest.mark.parametrize(("current", "target"), REFUSED)
async def test_update_experiment_status_refused_transition_returns_409(
    client, editor, project_id, pgsql, current, target
):
    experiment = await _in_status(client, editor, project_id, current)
    audited = len(audit_rows(pgsql, experiment["id"]))

    response = await client.patch(
        f"/api/v1/experiments/{experiment['id']}",
        json={"status": target, "name": "not applied"},
        headers=editor.headers,
    )

    await assert_problem(response, 409, "invalid_transition")
    row = _experiment_row(pgsql, experiment["id"])
    assert row["status"] == current
    assert row["name"] != "not applied"
    assert len(audit_rows(pgsql, experiment["id"])) == audited


@pytest.mark.parametrize("current", ["draft", "running"])
async def test_archive_experiment_with_running_run_returns_409(
    client, editor, project_id, pgsql, current
):
    experiment = await _in_status(client, editor, project_id, current)
    run = await create_run(client, editor, experiment["id"])
    await set_run_status(client, editor, run["id"], "running")

    response = await client.patch(
        f"/api/v1/experiments/{experiment['id']}",
        json={"status": "archived"},
        headers=editor.headers,
    )

    await assert_problem(response, 409, "experiment_has_running_runs")
    assert _experiment_row(pgsql, experiment["id"])["status"] == current


async def test_archive_experiment_after_its_runs_finish_succeeds(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run(client, editor, experiment["id"])
    await create_run(client, editor, experiment["id"])  # a draft run does not block archiving
    await set_run_status(client, editor, run["id"], "running")
    await set_experiment_status(client, editor, experiment["id"], "archived", expect=409)
    await set_run_status(client, editor, run["id"], "failed")

    body = await set_experiment_status(client, editor, experiment["id"], "archived")

    assert body["status"] == "archived"


async def test_create_run_in_archived_experiment_returns_409(client, editor, project_id, pgsql):
    experiment = await _in_status(client, editor, project_id, "archived")

    response = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs", json={"name": "r"}, headers=editor.headers
    )

    await assert_problem(response, 409, "experiment_archived")
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs")
        assert cursor.fetchone()[0] == 0


# --- delete ---------------------------------------------------------------------------------


async def test_delete_experiment_by_owner_removes_it_with_its_runs_and_audits(
    client, auth_stub, editor, project_id, pgsql
):
    owner = auth_stub.member(project_id, "owner")
    experiment = await create_experiment(client, editor, project_id)
    await create_run(client, editor, experiment["id"])

    response = await client.delete(f"/api/v1/experiments/{experiment['id']}", headers=owner.headers)

    assert response.status == 204
    assert _experiment_row(pgsql, experiment["id"]) is None
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs")
        assert cursor.fetchone()[0] == 0
    entry = audit_rows(pgsql, experiment["id"])[-1]
    assert entry["action"] == "experiment.deleted"
    assert entry["actor_id"] == str(owner.id)
    assert entry["actor_role"] == "owner"
    assert entry["before"]["id"] == experiment["id"]
    again = await client.get(f"/api/v1/experiments/{experiment['id']}", headers=owner.headers)
    await assert_problem(again, 404, "experiment_not_found")


async def test_delete_experiment_by_its_creator_with_editor_role_returns_403(
    client, editor, project_id, pgsql
):
    experiment = await create_experiment(client, editor, project_id)

    response = await client.delete(
        f"/api/v1/experiments/{experiment['id']}", headers=editor.headers
    )

    await assert_problem(response, 403, "forbidden")
    assert _experiment_row(pgsql, experiment["id"]) is not None


async def test_delete_experiment_with_running_run_returns_409(
    client, auth_stub, editor, project_id, pgsql
):
    owner = auth_stub.member(project_id, "owner")
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run(client, editor, experiment["id"])
    await set_run_status(client, editor, run["id"], "running")

    response = await client.delete(f"/api/v1/experiments/{experiment['id']}", headers=owner.headers)

    await assert_problem(response, 409, "experiment_has_running_runs")
    assert _experiment_row(pgsql, experiment["id"]) is not None


async def test_delete_experiment_unknown_id_returns_404(client, auth_stub, project_id):
    owner = auth_stub.member(project_id, "owner")

    response = await client.delete(f"/api/v1/experiments/{uuid.uuid4()}", headers=owner.headers)

    await assert_problem(response, 404, "experiment_not_found")
