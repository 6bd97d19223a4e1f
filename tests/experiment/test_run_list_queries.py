"""The run list filtered and sorted on params and metric summaries, typed: numbers compare as
numbers, text as text, booleans by eq/ne; pages follow the sort; bad expressions are 422 naming
the part."""

import json

import pytest

from tests.experiment.factories import create_run, expect
from tests.experiment.metric_kit import log_metrics, point
from tests.problems import assert_problem

# name: (params, {metric: [values logged in step order]})
RUNS = {
    "r1": ({"lr": 0.1, "optimizer": "adam", "flag": True}, {"loss": [0.9, 0.3]}),
    "r2": ({"lr": 0.001, "optimizer": "sgd", "flag": False}, {"loss": [0.5, 0.15]}),
    "r3": ({"lr": 0.01, "optimizer": "adam"}, {"loss": [0.4, 0.1]}),
    "r4": ({"lr": "0.5", "version": "1.0"}, {"loss": [0.2, "NaN"]}),
    "r5": ({"lr": 1e-4, "version": 1.0}, {"acc": [0.7]}),
    "r6": ({"lr": 2, "optimizer": "Adam"}, {"loss": [0.05, 0.25]}),
}


@pytest.fixture
async def runs(client, editor, experiment):
    made = {}
    for name, (params, metrics) in RUNS.items():
        run = await create_run(client, editor, experiment["id"], name=name, params=params)
        for metric, values in metrics.items():
            await log_metrics(client, editor, run["id"], [point(metric, v) for v in values])
        made[name] = run
    return made


async def listed(client, user, project_id, params, *, limit=50) -> list[str]:
    """The names of every listed run, page after page."""
    names, cursor = [], None
    while True:
        query = [("project_id", str(project_id)), ("limit", str(limit)), *params]
        if cursor:
            query.append(("cursor", cursor))
        page = await expect(
            await client.get("/api/v1/runs", params=query, headers=user.headers), 200
        )
        names += [run["name"] for run in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return names


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("param.lr_gt", "0.001")], {"r1", "r3", "r6"}),
        ([("param.lr_gte", "0.001")], {"r1", "r2", "r3", "r6"}),
        ([("param.lr_lte", "0.1")], {"r1", "r2", "r3", "r5"}),
        ([("param.lr", "0.1")], {"r1"}),
        ([("param.lr_lt", "1e-3")], {"r5"}),
        ([("param.lr_eq", "0.5")], set()),  # r4's lr is the text "0.5"
        ([("param.lr_eq", '"0.5"')], {"r4"}),
        ([("param.optimizer", "adam")], {"r1", "r3"}),
        ([("param.optimizer_ne", "adam")], {"r2", "r6"}),
        ([("param.optimizer_lt", "adam")], {"r6"}),  # "Adam" < "adam" in code-point order
        ([("param.version", "1.0")], {"r5"}),
        ([("param.version", '"1.0"')], {"r4"}),
        ([("param.flag", "true")], {"r1"}),
        ([("param.flag_ne", "true")], {"r2"}),
        ([("param.missing", "1")], set()),
        ([("metric.loss_lt", "0.2")], {"r2", "r3"}),
        ([("metric.loss.last_lt", "0.2")], {"r2", "r3"}),
        ([("metric.loss.min_lt", "0.2")], {"r2", "r3", "r6"}),
        ([("metric.loss.max_gte", "0.5")], {"r1", "r2"}),
        ([("metric.loss.avg_gt", "0.55")], {"r1"}),
        ([("metric.loss_gt", "0.2")], {"r1", "r6"}),  # r4's NaN matches no comparison
        ([("metric.acc", "0.7")], {"r5"}),
        ([("param.optimizer", "adam"), ("metric.loss_lt", "0.2")], {"r3"}),
        ([("param.lr_gt", "0.001"), ("param.lr_gt", "0.05")], {"r1", "r6"}),
        ([("metric.loss_lt", "0.2"), ("status", "draft"), ("q", "r2")], {"r2"}),
    ],
)
async def test_runs_are_filtered_on_params_and_metrics(
    client, viewer, project_id, runs, params, expected
):
    assert set(await listed(client, viewer, project_id, params)) == expected


@pytest.mark.parametrize("limit", [1, 2, 50])
@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("metric.loss", ["r3", "r2", "r6", "r1", "r4", "r5"]),  # NaN above all; none last
        ("-metric.loss", ["r4", "r1", "r6", "r2", "r3", "r5"]),
        ("metric.loss.min", ["r6", "r3", "r2", "r4", "r1", "r5"]),
        ("-metric.loss.max", ["r1", "r2", "r3", "r6", "r4", "r5"]),
        ("param.optimizer", ["r6", "r1", "r3", "r2", "r4", "r5"]),
        ("-param.optimizer", ["r2", "r3", "r1", "r6", "r4", "r5"]),
        ("param.lr", ["r4", "r5", "r2", "r3", "r1", "r6"]),  # the text first, then numbers
    ],
)
async def test_runs_sort_on_params_and_metrics_page_after_page(
    client, viewer, project_id, runs, sort, expected, limit
):
    got = await listed(client, viewer, project_id, [("sort", sort)], limit=limit)

    names = [n for n in expected if n in got]
    ties = (
        {("r1", "r3"), ("r3", "r1"), ("r4", "r5"), ("r5", "r4")} if "optimizer" in sort else set()
    )
    assert len(got) == len(RUNS)
    for position, (want, have) in enumerate(zip(names, got, strict=True)):
        if want != have:  # runs of one sort value come in id order: check the value only
            assert (want, have) in ties, (position, got)


async def test_a_filtered_and_sorted_export_matches_the_list(client, viewer, project_id, runs):
    params = [("metric.loss_lt", "0.5"), ("sort", "-metric.loss")]

    response = await client.get(
        "/api/v1/runs/export",
        params=[("project_id", str(project_id)), *params],
        headers=viewer.headers,
    )

    exported = [run["name"] for run in json.loads(await response.read())]
    assert exported == await listed(client, viewer, project_id, params) == ["r1", "r6", "r2", "r3"]


async def test_a_cursor_of_another_value_sort_is_400(client, viewer, project_id, runs):
    base = [("project_id", str(project_id)), ("limit", "1")]
    page = await expect(
        await client.get(
            "/api/v1/runs", params=[*base, ("sort", "metric.loss")], headers=viewer.headers
        ),
        200,
    )
    for sort in ("-metric.loss", "metric.loss.min", "param.loss", "name"):
        response = await client.get(
            "/api/v1/runs",
            params=[*base, ("sort", sort), ("cursor", page["next_cursor"])],
            headers=viewer.headers,
        )
        await assert_problem(response, 400, "invalid_cursor")


@pytest.mark.parametrize(
    ("params", "part"),
    [
        ([("metric.loss_lt", "abc")], "metric.loss_lt"),
        ([("metric.loss_lt", "1e999")], "metric.loss_lt"),
        ([("metric.loss_lt", "NaN")], "metric.loss_lt"),
        ([("metric._gt", "1")], "metric._gt"),
        ([("metric.min_gt", "1")], None),  # a metric named "min": valid
        ([("param._gt", "1")], "param._gt"),
        ([("param.", "1")], "param."),
        ([("param.flag_gt", "true")], "param.flag_gt"),
        ([("param." + "k" * 201, "1")], "param." + "k" * 201),
        ([("param.a\x00", "1")], "param.a\x00"),
        ([("param.lr", "a\x00")], "param.lr"),
        ([("param.lr", '"unterminated')], None),  # the text itself, quotes and all
        ([("param.lr", '"a" "b"')], "param.lr"),
        ([("sort", "metric.")], "sort"),
        ([("sort", "params.lr")], "sort"),
        ([("sort", "+metric.loss")], "sort"),
        ([("sort", "param.")], "sort"),
        ([("param.lr_gt", str(n)) for n in range(21)], "param."),
    ],
)
async def test_a_bad_expression_is_422_naming_its_part(client, viewer, project_id, params, part):
    response = await client.get(
        "/api/v1/runs",
        params=[("project_id", str(project_id)), *params],
        headers=viewer.headers,
    )

    if part is None:
        await expect(response, 200)
        return
    body = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in body["errors"]] == [part]
    assert body["errors"][0]["in"] == "query"


async def test_value_filters_need_the_same_scope_as_the_list(client, auth_stub, runs):
    stranger = auth_stub.user()
    response = await client.get(
        "/api/v1/runs",
        params={"experiment_id": runs["r1"]["experiment_id"], "metric.loss_lt": "1"},
        headers=stranger.headers,
    )
    await assert_problem(response, 404, "experiment_not_found")
