"""Logging run metrics over HTTP: what is stored (points, batch, summary), default steps,
NaN and infinities, late and refused runs, dedup by batch id, Idempotency-Key, who may log."""

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pytest

from tests.experiment.factories import create_run_in_status, expect
from tests.experiment.metric_kit import (
    log_metrics,
    metrics_path,
    point,
    post_metrics,
    series,
    stored_batches,
    stored_points,
    stored_summary,
    summaries,
)
from tests.plugins.roles import role_matrix
from tests.problems import assert_problem


@pytest.fixture
async def run(client, editor, experiment):
    return await create_run_in_status(client, editor, experiment["id"], "running")


async def test_logged_points_are_stored_and_answered_201_with_counts(
    client, editor, run, clock, pgsql
):
    at = "2026-01-02T03:04:05.5+00:00"
    answer = await log_metrics(
        client,
        editor,
        run["id"],
        [point("loss", 0.5, step=3, timestamp=at), point("acc", 1, step=3), point("loss", 0.25)],
    )

    assert answer == {
        "run_id": run["id"],
        "batch_id": None,
        "accepted": 3,
        "late": 0,
        "duplicate": False,
    }
    rows = stored_points(pgsql, run["id"])
    assert [(r["seq"], r["name"], r["step"], r["value"], r["late"]) for r in rows] == [
        (0, "loss", 3, 0.5, False),
        (1, "acc", 3, 1.0, False),
        (2, "loss", 4, 0.25, False),
    ]
    assert rows[0]["timestamp"] == datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)
    assert rows[1]["timestamp"] == rows[2]["timestamp"] == clock.now  # received at
    (batch,) = stored_batches(pgsql, run["id"])
    assert (batch["points"], batch["late"], str(batch["logged_by"])) == (3, False, str(editor.id))


async def test_a_point_without_step_takes_the_next_step_of_its_name(client, editor, run, pgsql):
    await log_metrics(client, editor, run["id"], [point("a", 1), point("a", 2), point("b", 3)])
    await log_metrics(
        client, editor, run["id"], [point("a", 4), point("b", 5, step=10), point("b", 6)]
    )
    await log_metrics(client, editor, run["id"], [point("a", 7, step=1), point("a", 8)])

    steps = [(r["name"], r["step"]) for r in stored_points(pgsql, run["id"])]
    assert steps == [
        ("a", 0), ("a", 1), ("b", 0),
        ("a", 2), ("b", 10), ("b", 11),
        ("a", 1), ("a", 3),  # after the highest step so far, not after the last point
    ]  # fmt: skip


async def test_concurrent_batches_without_steps_never_share_a_step(client, editor, run, pgsql):
    batches = [[point("loss", float(n))] * 20 for n in range(8)]

    await asyncio.gather(*(log_metrics(client, editor, run["id"], b) for b in batches))

    steps = sorted(r["step"] for r in stored_points(pgsql, run["id"]))
    assert steps == list(range(160))
    assert stored_summary(pgsql, run["id"], "loss")["count"] == 160


async def test_nan_and_infinities_are_kept_and_answered_as_strings(client, editor, run, pgsql):
    values = ["NaN", "Infinity", "-Infinity", 2.5]

    await log_metrics(client, editor, run["id"], [point("loss", v) for v in values])

    stored = [r["value"] for r in stored_points(pgsql, run["id"])]
    assert math.isnan(stored[0])
    assert stored[1:] == [math.inf, -math.inf, 2.5]
    page = await series(client, editor, run["id"], "loss")
    assert [item["value"] for item in page["items"]] == values
    summary = stored_summary(pgsql, run["id"], "loss")
    assert (summary["count"], summary["finite_count"], summary["min"], summary["max"]) == (
        4, 1, 2.5, 2.5,
    )  # fmt: skip


async def test_bare_nan_tokens_of_python_clients_are_read(client, editor, run, pgsql):
    body = b'{"metrics": [{"name": "x", "value": NaN}, {"name": "x", "value": -Infinity},'
    body += b' {"name": "x", "value": Infinity}]}'

    response = await client.post(
        metrics_path(run["id"]),
        data=body,
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await expect(response, 201)
    stored = [r["value"] for r in stored_points(pgsql, run["id"])]
    assert math.isnan(stored[0])
    assert stored[1:] == [-math.inf, math.inf]


@pytest.mark.parametrize("status", ["succeeded", "failed"])
async def test_a_finished_run_takes_points_marked_late(client, editor, experiment, pgsql, status):
    run = await create_run_in_status(client, editor, experiment["id"], status)

    answer = await log_metrics(client, editor, run["id"], [point("loss", 1), point("loss", 2)])

    assert (answer["accepted"], answer["late"]) == (2, 2)
    assert {r["late"] for r in stored_points(pgsql, run["id"])} == {True}
    assert stored_batches(pgsql, run["id"])[0]["late"] is True
    page = await series(client, editor, run["id"], "loss")
    assert [item["late"] for item in page["items"]] == [True, True]


async def test_a_draft_run_takes_points_on_time(client, editor, experiment, pgsql):
    run = await create_run_in_status(client, editor, experiment["id"], "draft")

    answer = await log_metrics(client, editor, run["id"], [point("loss", 1)])

    assert answer["late"] == 0
    assert [r["late"] for r in stored_points(pgsql, run["id"])] == [False]


async def test_an_archived_run_refuses_metrics_with_409_and_stores_nothing(
    client, editor, experiment, pgsql
):
    run = await create_run_in_status(client, editor, experiment["id"], "archived")

    response = await post_metrics(client, editor, run["id"], [point("loss", 1)])

    await assert_problem(response, 409, "run_archived")
    assert stored_points(pgsql, run["id"]) == []
    assert stored_batches(pgsql, run["id"]) == []
    assert stored_summary(pgsql, run["id"], "loss") is None


async def test_a_resend_with_the_same_batch_id_is_stored_once(client, editor, run, pgsql):
    points = [point("loss", 1), point("loss", 2)]
    first = await log_metrics(client, editor, run["id"], points, batch_id="epoch-1")

    again = await log_metrics(
        client, editor, run["id"], points, batch_id="epoch-1", expect_status=200
    )

    assert first["duplicate"] is False
    assert again == {**first, "duplicate": True}
    assert [r["step"] for r in stored_points(pgsql, run["id"])] == [0, 1]
    assert len(stored_batches(pgsql, run["id"])) == 1
    assert stored_summary(pgsql, run["id"], "loss")["count"] == 2


async def test_the_same_batch_id_in_another_run_is_another_batch(
    client, editor, run, experiment, pgsql
):
    other = await create_run_in_status(client, editor, experiment["id"], "running")

    await log_metrics(client, editor, run["id"], [point("loss", 1)], batch_id="b")
    await log_metrics(client, editor, other["id"], [point("loss", 1)], batch_id="b")

    assert len(stored_points(pgsql, run["id"])) == len(stored_points(pgsql, other["id"])) == 1


async def test_an_idempotency_key_replays_the_answer_and_stores_once(client, editor, run, pgsql):
    headers = {"Idempotency-Key": "log-1"}
    points = [point("loss", 1)]
    first = await post_metrics(client, editor, run["id"], points, headers=headers)
    body = await expect(first, 201)

    replay = await post_metrics(client, editor, run["id"], points, headers=headers)

    assert await expect(replay, 201) == body
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(stored_points(pgsql, run["id"])) == 1
    other = await post_metrics(client, editor, run["id"], [point("loss", 2)], headers=headers)
    await assert_problem(other, 422, "idempotency_key_reused")
    assert len(stored_points(pgsql, run["id"])) == 1


async def test_summaries_merge_each_batch_without_rescanning(client, editor, run, pgsql):
    early, late = "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"
    await log_metrics(
        client,
        editor,
        run["id"],
        [point("loss", 3.0, step=5, timestamp=late), point("loss", 1, timestamp=early)],
    )
    await log_metrics(
        client,
        editor,
        run["id"],
        [point("loss", -2.0, step=2), point("loss", 9.0, step=6, timestamp=early)],
    )
    await log_metrics(client, editor, run["id"], [point("loss", 4.0, step=6, timestamp=late)])

    summary = stored_summary(pgsql, run["id"], "loss")
    assert {k: summary[k] for k in ("count", "finite_count", "min", "max", "sum", "last_step")} == {
        "count": 5, "finite_count": 5, "min": -2.0, "max": 9.0, "sum": 15.0, "last_step": 6,
    }  # fmt: skip
    assert summary["last"] == 4.0  # the highest step, the latest timestamp on a tie
    (item,) = (await summaries(client, editor, run["id"]))["items"]
    assert item == {
        "name": "loss",
        "count": 5,
        "finite_count": 5,
        "min": -2.0,
        "max": 9.0,
        "avg": 3.0,
        "last": 4.0,
        "last_step": 6,
        "last_timestamp": "2026-01-01T00:00:01Z",
    }


async def test_a_sum_past_what_a_double_holds_becomes_infinity(client, editor, run, pgsql):
    await log_metrics(client, editor, run["id"], [point("big", 1.5e308)])
    await log_metrics(client, editor, run["id"], [point("big", 1.5e308)])

    assert stored_summary(pgsql, run["id"], "big")["sum"] == math.inf
    (item,) = (await summaries(client, editor, run["id"]))["items"]
    assert (item["avg"], item["max"]) == ("Infinity", 1.5e308)


async def test_a_metric_of_only_nan_has_no_min_max_or_avg(client, editor, run):
    await log_metrics(client, editor, run["id"], [point("x", "NaN")])

    (item,) = (await summaries(client, editor, run["id"]))["items"]
    assert (item["min"], item["max"], item["avg"], item["last"]) == (None, None, None, "NaN")


async def test_points_with_timestamps_ahead_of_the_clock_within_the_limit_are_taken(
    client, editor, run, clock, pgsql
):
    ahead = (clock.now + timedelta(seconds=299)).isoformat()

    await log_metrics(client, editor, run["id"], [point("x", 1, timestamp=ahead)])

    assert len(stored_points(pgsql, run["id"])) == 1


MATRIX = {
    "log": {"owner": 201, "editor": 201, "viewer": 403, "stranger": 404},
    "summaries": {"owner": 200, "editor": 200, "viewer": 200, "stranger": 404},
    "series": {"owner": 200, "editor": 200, "viewer": 200, "stranger": 404},
    "chart": {"owner": 200, "editor": 200, "viewer": 200, "stranger": 404},
}


@role_matrix(MATRIX)
async def test_metric_routes_by_role(
    client, editor, run, project_id, pgsql, caller_as, route, role, expected
):
    await log_metrics(client, editor, run["id"], [point("loss", 1)])
    user = caller_as(role, project_id)
    path = metrics_path(run["id"])
    if route == "log":
        response = await post_metrics(client, user, run["id"], [point("loss", 2)])
    else:
        url = {"summaries": path, "series": f"{path}/loss", "chart": f"{path}/loss?points=4"}
        response = await client.get(url[route], headers=user.headers)

    if expected >= 400:
        code = "forbidden" if expected == 403 else "run_not_found"
        await assert_problem(response, expected, code)
    else:
        await expect(response, expected)
    assert len(stored_points(pgsql, run["id"])) == (2 if route == "log" and expected == 201 else 1)


async def test_another_projects_run_is_404_to_its_editor_elsewhere(client, auth_stub, run, pgsql):
    elsewhere = auth_stub.member(__import__("uuid").uuid4(), "owner")

    response = await post_metrics(client, elsewhere, run["id"], [point("loss", 1)])

    await assert_problem(response, 404, "run_not_found")
    assert stored_points(pgsql, run["id"]) == []


@pytest.mark.parametrize("run_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
async def test_metrics_of_a_run_that_does_not_exist_are_404(client, editor, run_id):
    response = await post_metrics(client, editor, run_id, [point("loss", 1)])
    assert response.status == 404
    response = await client.get(metrics_path(run_id), headers=editor.headers)
    assert response.status == 404


async def test_logging_without_a_valid_token_is_401_and_stores_nothing(client, run, pgsql):
    for headers in ({}, {"Authorization": "Bearer forged.token.here"}):
        response = await client.post(
            metrics_path(run["id"]), json={"metrics": [point("x", 1)]}, headers=headers
        )
        await assert_problem(response, 401, "unauthorized")
    assert stored_points(pgsql, run["id"]) == []
