"""Filters, search, sort orders and keyset pagination of the run and experiment lists."""

import asyncio
import base64
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.experiment.factories import create_experiment, create_run, create_run_in_status, expect
from tests.problems import assert_problem

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)

# name, notes, tags, git_sha, status, experiment index, day
RUNS = [
    ("Alpha baseline", "calm air", ["aero", "wind"], "abc1234", "draft", 0, 0),
    ("beta gust", "100% throttle", ["aero"], "abc9999", "running", 0, 1),
    ("gamma_probe", "", ["wind"], "def0000", "succeeded", 0, 2),
    ("delta", "Probe moved to C:\\rig", [], None, "failed", 1, 3),
    ("epsilon 50%", "", ["aero", "wind", "night"], "abcdef0", "archived", 1, 4),
]


def set_created_at(pgsql, table: str, created: dict[str, datetime]) -> None:
    cursor = pgsql["experiment"].cursor()
    for row_id, instant in created.items():
        cursor.execute(f"UPDATE {table} SET created_at = %s WHERE id = %s", (instant, row_id))


def encode(value: Any) -> str:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
async def catalog(client, editor, project_id, pgsql):
    """Two experiments and the five RUNS, created a day apart from 2024-01-01."""
    experiments = [
        await create_experiment(
            client, editor, project_id, name="Wind Tunnel", description="Low speed", tags=["aero"]
        ),
        await create_experiment(
            client, editor, project_id, name="water_tank", description="100% humid"
        ),
    ]
    runs, created = [], {}
    for name, notes, tags, git_sha, status, experiment_index, day in RUNS:
        extra = {"git_sha": git_sha} if git_sha else {}
        run = await create_run_in_status(
            client,
            editor,
            experiments[experiment_index]["id"],
            status,
            name=name,
            notes=notes,
            tags=tags,
            **extra,
        )
        runs.append(run)
        created[run["id"]] = DAY0 + timedelta(days=day)
    set_created_at(pgsql, "runs", created)
    set_created_at(
        pgsql, "experiments", {e["id"]: DAY0 + timedelta(days=i) for i, e in enumerate(experiments)}
    )
    return {"experiments": experiments, "runs": runs}


async def list_names(client, user, url, params: list[tuple[str, str]]) -> list[str]:
    page = await expect(
        await client.get(url, params=[*params, ("limit", "500")], headers=user.headers), 200
    )
    assert page["next_cursor"] is None
    return [item["name"] for item in page["items"]]


async def walk(client, user, url, params: list[tuple[str, str]], *, limit: int) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        query = [*params, ("limit", str(limit)), *([("cursor", cursor)] if cursor else [])]
        page = await expect(await client.get(url, params=query, headers=user.headers), 200)
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], ["epsilon 50%", "delta", "gamma_probe", "beta gust", "Alpha baseline"]),
        ([("status", "draft")], ["Alpha baseline"]),
        ([("status", "draft"), ("status", "running")], ["beta gust", "Alpha baseline"]),
        (
            [("status", "succeeded"), ("status", "archived"), ("status", "failed")],
            ["epsilon 50%", "delta", "gamma_probe"],
        ),
        ([("tags", "night")], ["epsilon 50%"]),
        ([("tags", "wind"), ("tags", "night")], ["epsilon 50%", "gamma_probe", "Alpha baseline"]),
        (
            [("tags", "aero"), ("tags", "wind")],
            ["epsilon 50%", "gamma_probe", "beta gust", "Alpha baseline"],
        ),
        (
            [("tags", "aero"), ("tags", "wind"), ("tags_match", "all")],
            ["epsilon 50%", "Alpha baseline"],
        ),
        ([("tags", "aero"), ("tags_match", "any")], ["epsilon 50%", "beta gust", "Alpha baseline"]),
        ([("tags", "nothing")], []),
        (
            [("created_after", "2024-01-02T00:00:00Z")],
            ["epsilon 50%", "delta", "gamma_probe", "beta gust"],
        ),
        (
            [("created_before", "2024-01-04T00:00:00Z")],
            ["gamma_probe", "beta gust", "Alpha baseline"],
        ),
        (
            [("created_after", "2024-01-02T00:00:00Z"), ("created_before", "2024-01-04T00:00:00Z")],
            ["gamma_probe", "beta gust"],
        ),
        # The same instants in another offset.
        (
            [
                ("created_after", "2024-01-02T03:00:00+03:00"),
                ("created_before", "2024-01-03T19:00:00-05:00"),
            ],
            ["gamma_probe", "beta gust"],
        ),
        ([("git_sha", "abc")], ["epsilon 50%", "beta gust", "Alpha baseline"]),
        ([("git_sha", "abc1")], ["Alpha baseline"]),
        ([("git_sha", "abc1234")], ["Alpha baseline"]),
        ([("git_sha", "0")], []),
        ([("q", "ALPHA")], ["Alpha baseline"]),
        ([("q", "probe")], ["delta", "gamma_probe"]),
        ([("q", "Calm Air")], ["Alpha baseline"]),
        ([("q", "%")], ["epsilon 50%", "beta gust"]),
        ([("q", "0%")], ["epsilon 50%", "beta gust"]),
        ([("q", "_")], ["gamma_probe"]),
        ([("q", "a_b")], []),  # as a wildcard `_` would match "Alpha baseline"
        ([("q", "a%g")], []),  # as a wildcard `%` would match "beta gust"
        ([("q", "\\")], ["delta"]),
        ([("q", "c:\\R")], ["delta"]),
        ([("status", "archived"), ("tags", "night"), ("q", "eps")], ["epsilon 50%"]),
        (
            [("sort", "created_at")],
            ["Alpha baseline", "beta gust", "gamma_probe", "delta", "epsilon 50%"],
        ),
        (
            [("sort", "-created_at")],
            ["epsilon 50%", "delta", "gamma_probe", "beta gust", "Alpha baseline"],
        ),
        (
            [("sort", "name")],
            ["Alpha baseline", "beta gust", "delta", "epsilon 50%", "gamma_probe"],
        ),
        (
            [("sort", "-name")],
            ["gamma_probe", "epsilon 50%", "delta", "beta gust", "Alpha baseline"],
        ),
    ],
)
async def test_list_runs_with_filter_returns_matching_runs(
    client, viewer, project_id, catalog, params, expected
):
    names = await list_names(
        client, viewer, "/api/v1/runs", [("project_id", str(project_id)), *params]
    )
    assert names == expected


async def test_list_runs_of_experiment_returns_only_its_runs(client, viewer, project_id, catalog):
    second = catalog["experiments"][1]["id"]
    by_experiment = await list_names(client, viewer, "/api/v1/runs", [("experiment_id", second)])
    assert by_experiment == ["epsilon 50%", "delta"]
    both = await list_names(
        client,
        viewer,
        "/api/v1/runs",
        [("project_id", str(project_id)), ("experiment_id", second), ("sort", "name")],
    )
    assert both == ["delta", "epsilon 50%"]


async def test_list_runs_items_equal_the_runs(client, viewer, project_id, catalog):
    page = await expect(
        await client.get(
            "/api/v1/runs", params={"project_id": str(project_id)}, headers=viewer.headers
        ),
        200,
    )
    for item in page["items"]:
        run = await expect(
            await client.get(f"/api/v1/runs/{item['id']}", headers=viewer.headers), 200
        )
        assert item == run
    assert datetime.fromisoformat(page["items"][-1]["created_at"]) == DAY0


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], ["water_tank", "Wind Tunnel"]),
        ([("status", "draft")], ["water_tank", "Wind Tunnel"]),
        ([("status", "running")], []),
        ([("tags", "aero")], ["Wind Tunnel"]),
        ([("tags", "aero"), ("tags", "x"), ("tags_match", "all")], []),
        ([("q", "tunnel")], ["Wind Tunnel"]),
        ([("q", "LOW SPEED")], ["Wind Tunnel"]),
        ([("q", "_")], ["water_tank"]),
        ([("q", "%")], ["water_tank"]),
        ([("q", "r_t")], ["water_tank"]),
        ([("q", "d_t")], []),  # as a wildcard `_` would match "Wind Tunnel"
        ([("created_after", "2024-01-02T00:00:00Z")], ["water_tank"]),
        ([("created_before", "2024-01-02T00:00:00Z")], ["Wind Tunnel"]),
        ([("sort", "name")], ["Wind Tunnel", "water_tank"]),
        ([("sort", "-name")], ["water_tank", "Wind Tunnel"]),
        ([("sort", "created_at")], ["Wind Tunnel", "water_tank"]),
    ],
)
async def test_list_experiments_with_filter_returns_matching_experiments(
    client, viewer, project_id, catalog, params, expected
):
    names = await list_names(
        client, viewer, "/api/v1/experiments", [("project_id", str(project_id)), *params]
    )
    assert names == expected


async def test_list_experiments_by_status_follows_changes(
    client, editor, viewer, project_id, catalog
):
    first = catalog["experiments"][0]
    response = await client.patch(
        f"/api/v1/experiments/{first['id']}", json={"status": "running"}, headers=editor.headers
    )
    await expect(response, 200)
    params = [("project_id", str(project_id))]
    assert await list_names(
        client, viewer, "/api/v1/experiments", [*params, ("status", "running")]
    ) == ["Wind Tunnel"]
    assert await list_names(
        client, viewer, "/api/v1/experiments", [*params, ("status", "running"), ("status", "draft")]
    ) == ["water_tank", "Wind Tunnel"]


_SORTS = {
    "created_at": (lambda r: (r["created_at_dt"], uuid.UUID(r["id"])), False),
    "-created_at": (lambda r: (r["created_at_dt"], uuid.UUID(r["id"])), True),
    "name": (lambda r: (r["name"], uuid.UUID(r["id"])), False),
    "-name": (lambda r: (r["name"], uuid.UUID(r["id"])), True),
}


@pytest.fixture
async def many_runs(client, editor, project_id, pgsql):
    """23 runs with ties: 4 distinct created_at instants and 5 distinct names."""
    experiment = await create_experiment(client, editor, project_id)
    runs = [
        await create_run(client, editor, experiment["id"], name=f"run-{i % 5}") for i in range(23)
    ]
    created = {r["id"]: DAY0 + timedelta(hours=i % 4, microseconds=7) for i, r in enumerate(runs)}
    set_created_at(pgsql, "runs", created)
    for run in runs:
        run["created_at_dt"] = created[run["id"]]
    return experiment, runs


@pytest.mark.parametrize("sort", list(_SORTS))
@pytest.mark.parametrize("limit", [1, 4, 23, 50])
async def test_list_runs_pages_walk_all_without_gaps_or_duplicates(
    client, viewer, project_id, many_runs, sort, limit
):
    _, runs = many_runs
    key, descending = _SORTS[sort]
    expected = [r["id"] for r in sorted(runs, key=key, reverse=descending)]
    items = await walk(
        client,
        viewer,
        "/api/v1/runs",
        [("project_id", str(project_id)), ("sort", sort)],
        limit=limit,
    )
    assert [item["id"] for item in items] == expected


@pytest.mark.parametrize("sort", list(_SORTS))
async def test_list_experiments_pages_walk_all_without_gaps_or_duplicates(
    client, editor, viewer, project_id, pgsql, sort
):
    experiments = [
        await create_experiment(client, editor, project_id, name=f"exp-{i % 3}") for i in range(11)
    ]
    created = {e["id"]: DAY0 + timedelta(minutes=i % 2) for i, e in enumerate(experiments)}
    set_created_at(pgsql, "experiments", created)
    for experiment in experiments:
        experiment["created_at_dt"] = created[experiment["id"]]
    key, descending = _SORTS[sort]
    expected = [e["id"] for e in sorted(experiments, key=key, reverse=descending)]
    items = await walk(
        client,
        viewer,
        "/api/v1/experiments",
        [("project_id", str(project_id)), ("sort", sort)],
        limit=3,
    )
    assert [item["id"] for item in items] == expected


@pytest.mark.parametrize("sort", list(_SORTS))
async def test_list_runs_walk_during_inserts_sees_every_existing_run_once(
    client, editor, viewer, project_id, sort
):
    experiment = await create_experiment(client, editor, project_id)
    rng = random.Random(sort)
    names = [f"run-{rng.randrange(1000):03d}" for _ in range(40)]
    existing = [await create_run(client, editor, experiment["id"], name=name) for name in names]
    walking = True

    async def insert_while_walking() -> int:
        inserted = 0
        while walking:
            # Names all over the order, so new runs land before and after the walk's position.
            await create_run(
                client, editor, experiment["id"], name=f"run-{rng.randrange(1000):03d}"
            )
            inserted += 1
        return inserted

    inserter = asyncio.create_task(insert_while_walking())
    try:
        items = await walk(
            client,
            viewer,
            "/api/v1/runs",
            [("experiment_id", experiment["id"]), ("sort", sort)],
            limit=3,
        )
    finally:
        walking = False
        inserted = await inserter
    assert inserted > 0
    seen = [item["id"] for item in items]
    assert len(seen) == len(set(seen)), "a run was listed twice"
    assert {r["id"] for r in existing} <= set(seen)
    key, descending = _SORTS[sort]
    for item in items:
        item["created_at_dt"] = datetime.fromisoformat(item["created_at"])
    assert items == sorted(items, key=key, reverse=descending)


async def _cursor(client, user, url, params) -> str:
    page = await expect(await client.get(url, params=params, headers=user.headers), 200)
    assert page["next_cursor"]
    return page["next_cursor"]


@pytest.mark.parametrize("url", ["/api/v1/runs", "/api/v1/experiments"])
async def test_list_with_cursor_of_another_sort_is_rejected(
    client, viewer, project_id, catalog, url
):
    base = {"project_id": str(project_id), "limit": "1"}
    cursor = await _cursor(client, viewer, url, {**base, "sort": "name"})
    for sort in ("-name", "created_at", "-created_at"):
        response = await client.get(
            url, params={**base, "sort": sort, "cursor": cursor}, headers=viewer.headers
        )
        await assert_problem(response, 400, "invalid_cursor")
    # The default sort is -created_at, which is not the cursor's either.
    response = await client.get(url, params={**base, "cursor": cursor}, headers=viewer.headers)
    await assert_problem(response, 400, "invalid_cursor")


_GARBAGE_CURSORS = {
    "not-base64": "%%%not base64%%%",
    "not-json": encode(b"\xff\xfe not json"),
    "json-list": encode([1, 2, 3]),
    "json-string": encode("cursor"),
    "missing-id": encode({"sort": "-created_at", "value": "2024-01-01T00:00:00+00:00"}),
    "bad-id": encode({"sort": "-created_at", "value": "2024-01-01T00:00:00+00:00", "id": "x"}),
    "bad-instant": encode({"sort": "-created_at", "value": "yesterday", "id": str(uuid.uuid4())}),
    "bad-sort": encode({"sort": "colour", "value": "x", "id": str(uuid.uuid4())}),
    "number-value": encode({"sort": "-created_at", "value": 5, "id": str(uuid.uuid4())}),
    "session-cursor": encode({"ordinal": 3}),
    "non-ascii": "курсор",
}


@pytest.mark.parametrize("cursor", list(_GARBAGE_CURSORS.values()), ids=list(_GARBAGE_CURSORS))
@pytest.mark.parametrize("url", ["/api/v1/runs", "/api/v1/experiments"])
async def test_list_with_garbage_cursor_is_rejected(client, viewer, project_id, url, cursor):
    response = await client.get(
        url, params={"project_id": str(project_id), "cursor": cursor}, headers=viewer.headers
    )
    await assert_problem(response, 400, "invalid_cursor")


async def test_list_with_cursor_past_the_end_is_empty(client, viewer, project_id, catalog):
    cursor = encode({"sort": "name", "value": "zzz", "id": str(uuid.uuid4())})
    page = await expect(
        await client.get(
            "/api/v1/runs",
            params={"project_id": str(project_id), "sort": "name", "cursor": cursor},
            headers=viewer.headers,
        ),
        200,
    )
    assert page == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("limit", ["0", "-1", "501", "ten", "1.5", ""])
@pytest.mark.parametrize("url", ["/api/v1/runs", "/api/v1/experiments"])
async def test_list_with_limit_out_of_bounds_is_rejected(client, viewer, project_id, url, limit):
    response = await client.get(
        url, params={"project_id": str(project_id), "limit": limit}, headers=viewer.headers
    )
    await assert_problem(response, 422, "validation_failed")


@pytest.mark.parametrize("limit", ["1", "500"])
async def test_list_with_limit_at_bounds_is_accepted(client, viewer, project_id, catalog, limit):
    page = await expect(
        await client.get(
            "/api/v1/runs",
            params={"project_id": str(project_id), "limit": limit},
            headers=viewer.headers,
        ),
        200,
    )
    assert len(page["items"]) == min(int(limit), len(RUNS))
    assert (page["next_cursor"] is None) is (int(limit) >= len(RUNS))


@pytest.mark.parametrize(
    ("scoped", "params"),
    [
        (False, {}),
        (False, {"status": "draft"}),
        (False, {"project_id": "not-a-uuid"}),
        (False, {"experiment_id": "not-a-uuid"}),
        (True, {"status": "paused"}),
        (True, {"tags_match": "some"}),
        (True, {"tags": "has space"}),
        (True, {"sort": "status"}),
        (True, {"sort": "+name"}),
        (True, {"created_after": "yesterday"}),
        (True, {"git_sha": "xyz"}),
        (True, {"git_sha": "ABC"}),
        (True, {"q": ""}),
        (True, {"q": "x" * 201}),
        (True, {"colour": "red"}),
    ],
)
async def test_list_runs_with_bad_query_is_rejected(client, viewer, project_id, scoped, params):
    query = {"project_id": str(project_id), **params} if scoped else params
    response = await client.get("/api/v1/runs", params=query, headers=viewer.headers)
    await assert_problem(response, 422, "validation_failed")


@pytest.mark.parametrize(
    "params",
    [{}, {"experiment_id": str(uuid.uuid4())}, {"status": "succeeded"}, {"git_sha": "abc"}],
)
async def test_list_experiments_with_bad_query_is_rejected(client, viewer, project_id, params):
    query = dict(params)
    if params and "experiment_id" not in params:
        query["project_id"] = str(project_id)
    response = await client.get("/api/v1/experiments", params=query, headers=viewer.headers)
    await assert_problem(response, 422, "validation_failed")


async def test_list_runs_of_experiment_in_another_project_is_not_found(
    client, viewer, auth_stub, project_id, catalog
):
    other_project = uuid.uuid4()
    other_owner = auth_stub.member(other_project, "owner")
    foreign = await create_experiment(client, other_owner, other_project)
    response = await client.get(
        "/api/v1/runs", params={"experiment_id": foreign["id"]}, headers=viewer.headers
    )
    await assert_problem(response, 404, "experiment_not_found")
    # A member of both projects still may not mix them.
    auth_stub.grant(viewer, other_project, "viewer")
    response = await client.get(
        "/api/v1/runs",
        params={"project_id": str(project_id), "experiment_id": foreign["id"]},
        headers=viewer.headers,
    )
    await assert_problem(response, 404, "experiment_not_found")
    response = await client.get(
        "/api/v1/runs", params={"experiment_id": str(uuid.uuid4())}, headers=viewer.headers
    )
    await assert_problem(response, 404, "experiment_not_found")


@pytest.mark.parametrize("url", ["/api/v1/runs", "/api/v1/experiments"])
async def test_list_of_project_by_stranger_is_not_found(
    client, auth_stub, project_id, catalog, url
):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    response = await client.get(
        url, params={"project_id": str(project_id)}, headers=stranger.headers
    )
    await assert_problem(response, 404, "not_found")


async def test_list_never_shows_another_projects_rows(
    client, auth_stub, viewer, project_id, catalog
):
    other_project = uuid.uuid4()
    other_owner = auth_stub.member(other_project, "owner")
    foreign = await create_experiment(client, other_owner, other_project, name="Wind foreign")
    await create_run(client, other_owner, foreign["id"], name="Alpha foreign", tags=["aero"])
    params = [("project_id", str(project_id)), ("q", "foreign")]
    assert await list_names(client, viewer, "/api/v1/runs", params) == []
    assert await list_names(client, viewer, "/api/v1/experiments", params) == []


@pytest.mark.parametrize(
    "instant",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-14:00",  # past year 9999 in UTC
        "2024-01-01T00:00:00",  # no offset: which zone would it be?
        "2024-01-01",
    ],
)
@pytest.mark.parametrize("name", ["created_after", "created_before"])
@pytest.mark.parametrize("url", ["/api/v1/runs", "/api/v1/experiments"])
async def test_list_with_instant_out_of_range_or_without_offset_is_rejected(
    client, viewer, project_id, url, name, instant
):
    response = await client.get(
        url, params={"project_id": str(project_id), name: instant}, headers=viewer.headers
    )
    body = await assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["field"] == name


async def test_list_with_instant_at_range_edges_is_accepted(client, viewer, project_id, catalog):
    params = [
        ("project_id", str(project_id)),
        ("created_after", "0001-01-01T00:00:00Z"),
        ("created_before", "9999-12-31T23:59:59Z"),
    ]
    assert len(await list_names(client, viewer, "/api/v1/runs", params)) == len(RUNS)


_FORGED_CURSORS = {
    "instant-before-year-1": ("-created_at", "0001-01-01T00:00:00+14:00"),
    "instant-after-year-9999": ("created_at", "9999-12-31T23:59:59.999999-23:59"),
    "instant-without-offset": ("-created_at", "2024-01-01T00:00:00"),
    "instant-offset-too-big": ("-created_at", "2024-01-01T00:00:00+25:00"),
    "name-with-nul": ("name", "a\u0000b"),
}


@pytest.mark.parametrize(
    ("sort", "value"), list(_FORGED_CURSORS.values()), ids=list(_FORGED_CURSORS)
)
@pytest.mark.parametrize("url", ["/api/v1/runs", "/api/v1/experiments"])
async def test_list_with_forged_cursor_value_is_rejected(
    client, viewer, project_id, url, sort, value
):
    cursor = encode({"sort": sort, "value": value, "id": str(uuid.uuid4())})
    response = await client.get(
        url,
        params={"project_id": str(project_id), "sort": sort, "cursor": cursor},
        headers=viewer.headers,
    )
    await assert_problem(response, 400, "invalid_cursor")
