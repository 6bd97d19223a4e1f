"""CSV and JSON exports of runs and experiments: same rows as the list API, streamed whole."""

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.experiment.factories import create_experiment, create_run, create_run_in_status, expect
from tests.problems import assert_problem

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)


async def list_all(client, user, url: str, params: list[tuple[str, str]]) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        query = [*params, ("limit", "500"), *([("cursor", cursor)] if cursor else [])]
        page = await expect(await client.get(url, params=query, headers=user.headers), 200)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def export(client, user, url: str, params: list[tuple[str, str]], fmt: str) -> Any:
    response = await client.get(url, params=[*params, ("format", fmt)], headers=user.headers)
    text = await response.text()
    assert response.status == 200, text
    name = url.rsplit("/", 2)[-2]
    assert response.headers["Content-Disposition"] == f'attachment; filename="{name}.{fmt}"'
    assert response.headers["Cache-Control"] == "no-store"
    # Streamed as it is read: no length known up front.
    assert "Content-Length" not in response.headers
    assert response.headers["Transfer-Encoding"] == "chunked"
    if fmt == "csv":
        assert response.content_type == "text/csv"
        assert response.charset == "utf-8"
        return list(csv.reader(io.StringIO(text, newline="")))
    assert response.content_type == "application/json"
    return json.loads(text)


def csv_records(rows: list[list[str]], like: list[dict]) -> list[dict]:
    """CSV rows back into list-API shape: JSON cells decoded, empty cells as null."""
    header, *lines = rows
    records = []
    for line in lines:
        assert len(line) == len(header), line
        records.append(dict(zip(header, line, strict=True)))
    for record, item in zip(records, like, strict=False):
        for column, value in item.items():
            if isinstance(value, dict | list):
                record[column] = json.loads(record[column])
    return records


def as_csv_values(item: dict) -> dict:
    """What the export writes for a list-API item (formula-like text gets a leading ')."""

    def cell(value):
        if value is None:
            return ""
        if isinstance(value, dict | list):
            return value
        text = str(value)
        return (
            "'" + text if isinstance(value, str) and text.startswith(("=", "+", "-", "@")) else text
        )

    return {key: cell(value) for key, value in item.items()}


@pytest.fixture
async def runs(client, editor, project_id, pgsql):
    """Runs with JSON fields, odd characters, every status, and fixed creation days."""
    experiment = await create_experiment(client, editor, project_id, name="Tunnel")
    other = await create_experiment(client, editor, project_id, name="Tank")
    created = [
        await create_run_in_status(
            client,
            editor,
            experiment["id"],
            "succeeded",
            name='comma, "quote"\nand newline',
            params={"lr": 0.1, "layers": [64, 32], "nested": {"ok": True, "none": None}},
            env={"python": "3.11"},
            tags=["aero", "wind"],
            git_sha="abc1234",
            notes="ünïcødé ✓",
            metadata={"rig": "A"},
        ),
        await create_run_in_status(client, editor, experiment["id"], "running", name="plain"),
        await create_run(client, editor, other["id"], name="draft one", tags=["aero"]),
        await create_run_in_status(
            client, editor, other["id"], "failed", name="=cmd|' /C calc'!A0", git_sha="def5678"
        ),
    ]
    cursor = pgsql["experiment"].cursor()
    for day, run in enumerate(created):
        cursor.execute(
            "UPDATE runs SET created_at = %s WHERE id = %s", (DAY0 + timedelta(days=day), run["id"])
        )
    return {"experiment": experiment, "other": other, "runs": created}


_RUN_FILTERS = [
    [],
    [("sort", "name")],
    [("sort", "-name")],
    [("sort", "created_at")],
    [("status", "running"), ("status", "draft")],
    [("tags", "aero"), ("tags", "wind"), ("tags_match", "all")],
    [("tags", "wind"), ("tags", "x")],
    [("created_after", "2024-01-02T00:00:00Z"), ("created_before", "2024-01-04T00:00:00Z")],
    [("git_sha", "abc")],
    [("q", "PLAIN")],
    [("q", "ünï")],
]


@pytest.mark.parametrize("params", _RUN_FILTERS)
@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_runs_with_filters_equals_list(client, viewer, project_id, runs, params, fmt):
    scope = [("project_id", str(project_id))]
    listed = await list_all(client, viewer, "/api/v1/runs", [*scope, *params])
    exported = await export(client, viewer, "/api/v1/runs/export", [*scope, *params], fmt)
    if fmt == "json":
        assert exported == listed
    else:
        assert exported[0] == list(runs["runs"][0])
        assert csv_records(exported, listed) == [as_csv_values(item) for item in listed]


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_runs_of_experiment_equals_list(client, viewer, runs, fmt):
    params = [("experiment_id", runs["other"]["id"])]
    listed = await list_all(client, viewer, "/api/v1/runs", params)
    assert [r["name"] for r in listed] == ["=cmd|' /C calc'!A0", "draft one"]
    exported = await export(client, viewer, "/api/v1/runs/export", params, fmt)
    if fmt == "json":
        assert exported == listed
    else:
        assert csv_records(exported, listed) == [as_csv_values(item) for item in listed]


async def test_export_runs_csv_has_one_line_per_run_with_json_cells(
    client, viewer, project_id, runs
):
    rows = await export(
        client, viewer, "/api/v1/runs/export", [("project_id", str(project_id))], "csv"
    )
    header = rows[0]
    assert header == [
        "id",
        "experiment_id",
        "project_id",
        "name",
        "params",
        "git_sha",
        "env",
        "tags",
        "notes",
        "metadata",
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
        "failure_reason",
        "created_by",
        "created_at",
        "updated_at",
    ]
    assert len(rows) == 1 + len(runs["runs"])
    by_name = {row[header.index("name")]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    odd = by_name['comma, "quote"\nand newline']
    assert json.loads(odd["params"]) == {
        "lr": 0.1,
        "layers": [64, 32],
        "nested": {"ok": True, "none": None},
    }
    assert json.loads(odd["tags"]) == ["aero", "wind"]
    assert json.loads(odd["env"]) == {"python": "3.11"}
    assert odd["notes"] == "ünïcødé ✓"
    assert odd["status"] == "succeeded"
    assert float(odd["duration_seconds"]) >= 0
    draft = by_name["draft one"]
    assert (draft["git_sha"], draft["started_at"], draft["finished_at"]) == ("", "", "")
    assert json.loads(draft["params"]) == {}
    assert datetime.fromisoformat(draft["created_at"]) == DAY0 + timedelta(days=2)


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_runs_with_no_match_is_empty(client, viewer, project_id, runs, fmt):
    params = [("project_id", str(project_id)), ("tags", "nothing")]
    exported = await export(client, viewer, "/api/v1/runs/export", params, fmt)
    if fmt == "json":
        assert exported == []
    else:
        assert len(exported) == 1
        assert exported[0][0] == "id"


async def test_export_of_project_without_runs_is_empty(client, viewer, project_id):
    params = [("project_id", str(project_id))]
    assert await export(client, viewer, "/api/v1/runs/export", params, "json") == []
    assert await export(client, viewer, "/api/v1/experiments/export", params, "json") == []


async def test_export_format_defaults_to_json(client, viewer, project_id, runs):
    response = await client.get(
        "/api/v1/runs/export", params={"project_id": str(project_id)}, headers=viewer.headers
    )
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="runs.json"'
    assert len(await response.json()) == len(runs["runs"])


@pytest.mark.parametrize("params", [[], [("sort", "name")], [("tags", "aero")], [("q", "TAN")]])
@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_experiments_with_filters_equals_list(
    client, viewer, project_id, runs, params, fmt
):
    scope = [("project_id", str(project_id))]
    listed = await list_all(client, viewer, "/api/v1/experiments", [*scope, *params])
    exported = await export(client, viewer, "/api/v1/experiments/export", [*scope, *params], fmt)
    if fmt == "json":
        assert exported == listed
    else:
        assert exported[0] == list(runs["experiment"])
        assert csv_records(exported, listed) == [as_csv_values(item) for item in listed]


@pytest.fixture
async def many_runs(client, editor, project_id, pgsql):
    """1500 runs inserted straight into the table: creation instants with ties, even/odd tags."""
    experiment = await create_experiment(client, editor, project_id)
    cursor = pgsql["experiment"].cursor()
    cursor.execute(
        """
        INSERT INTO runs (experiment_id, project_id, name, params, tags, created_by, created_at)
        SELECT %(experiment_id)s, %(project_id)s, 'run ' || lpad(mod(n, 700)::text, 4, '0'),
               jsonb_build_object('n', n),
               ARRAY[CASE WHEN mod(n, 2) = 0 THEN 'even' ELSE 'odd' END],
               %(user_id)s, %(day0)s::timestamptz + (n / 3) * interval '1 second'
        FROM generate_series(1, 1500) AS n
        """,
        {
            "experiment_id": experiment["id"],
            "project_id": str(project_id),
            "user_id": str(editor.id),
            "day0": DAY0,
        },
    )
    return experiment


def sort_key(sort: str):
    column = sort.lstrip("-")

    def key(item: dict) -> tuple:
        value = item[column]
        if column == "created_at":
            value = datetime.fromisoformat(value)
        return (value, uuid.UUID(item["id"]))

    return key


@pytest.mark.parametrize("sort", ["-created_at", "name", "created_at", "-name"])
@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_many_runs_is_complete_and_in_order(
    client, viewer, project_id, many_runs, sort, fmt
):
    params = [("project_id", str(project_id)), ("sort", sort)]
    exported = await export(client, viewer, "/api/v1/runs/export", params, fmt)
    if fmt == "csv":
        header, *lines = exported
        items = [dict(zip(header, line, strict=True)) for line in lines]
    else:
        items = exported
    assert len(items) == 1500
    assert len({item["id"] for item in items}) == 1500
    assert items == sorted(items, key=sort_key(sort), reverse=sort.startswith("-"))
    listed = await list_all(client, viewer, "/api/v1/runs", params)
    assert [item["id"] for item in items] == [item["id"] for item in listed]
    if fmt == "json":
        assert items == listed
    else:
        assert sorted(json.loads(item["params"])["n"] for item in items) == list(range(1, 1501))


async def test_export_many_runs_with_filter_is_complete(client, viewer, project_id, many_runs):
    params = [("project_id", str(project_id)), ("tags", "even")]
    exported = await export(client, viewer, "/api/v1/runs/export", params, "json")
    assert sorted(item["params"]["n"] for item in exported) == list(range(2, 1501, 2))
    assert exported == await list_all(client, viewer, "/api/v1/runs", params)


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("url", ["/api/v1/runs/export", "/api/v1/experiments/export"])
async def test_export_by_stranger_is_not_found(client, auth_stub, project_id, runs, url, fmt):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    response = await client.get(
        url, params={"project_id": str(project_id), "format": fmt}, headers=stranger.headers
    )
    body = await assert_problem(response, 404, "not_found")
    assert "Content-Disposition" not in response.headers
    assert runs["runs"][0]["id"] not in json.dumps(body)


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_runs_of_foreign_experiment_is_not_found(client, auth_stub, viewer, runs, fmt):
    other_project = uuid.uuid4()
    other_owner = auth_stub.member(other_project, "owner")
    foreign = await create_experiment(client, other_owner, other_project)
    await create_run(client, other_owner, foreign["id"], name="foreign")
    response = await client.get(
        "/api/v1/runs/export",
        params={"experiment_id": foreign["id"], "format": fmt},
        headers=viewer.headers,
    )
    await assert_problem(response, 404, "experiment_not_found")
    assert "Content-Disposition" not in response.headers


async def test_export_without_token_is_unauthorized(client, project_id):
    response = await client.get("/api/v1/runs/export", params={"project_id": str(project_id)})
    await assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/runs/export", {}),
        ("/api/v1/runs/export", {"format": "xml"}),
        ("/api/v1/runs/export", {"limit": "10"}),
        ("/api/v1/runs/export", {"cursor": "abc"}),
        ("/api/v1/runs/export", {"status": "paused"}),
        ("/api/v1/runs/export", {"sort": "status"}),
        ("/api/v1/experiments/export", {}),
        ("/api/v1/experiments/export", {"format": "CSV"}),
        ("/api/v1/experiments/export", {"git_sha": "abc"}),
    ],
)
async def test_export_with_bad_query_is_rejected(client, viewer, project_id, url, params):
    query = {"project_id": str(project_id), **params} if params else {}
    response = await client.get(url, params=query, headers=viewer.headers)
    await assert_problem(response, 422, "validation_failed")


async def test_export_csv_keeps_formula_like_text_as_text(client, editor, project_id):
    experiment = await create_experiment(client, editor, project_id)
    await create_run(client, editor, experiment["id"], name="=HYPERLINK(1)", notes="@sum")

    response = await client.get(
        "/api/v1/runs/export",
        params={"project_id": str(project_id), "format": "csv"},
        headers=editor.headers,
    )

    [row] = list(csv.DictReader(io.StringIO(await response.text())))
    assert row["name"] == "'=HYPERLINK(1)"
    assert row["notes"] == "'@sum"
