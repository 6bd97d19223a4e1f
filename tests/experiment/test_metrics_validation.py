"""Bad batches of run metrics: each is refused as a whole (problem+json naming every bad field
by index), and nothing of it is stored."""

from datetime import timedelta

import pytest

from tests.experiment.factories import create_run_in_status, expect
from tests.experiment.metric_kit import (
    log_metrics,
    metrics_path,
    point,
    post_metrics,
    stored_batches,
    stored_points,
)
from tests.problems import assert_problem


@pytest.fixture
async def run(client, editor, experiment):
    return await create_run_in_status(client, editor, experiment["id"], "running")


async def refused(response, pgsql, run, *, status=422, code="validation_failed"):
    """Asserts the refusal and that nothing was stored; returns the (field, type) pairs."""
    body = await assert_problem(response, status, code)
    assert stored_points(pgsql, run["id"]) == []
    assert stored_batches(pgsql, run["id"]) == []
    return [(e["field"], e["type"]) for e in body.get("errors", [])]


BAD_POINTS = [
    ("name too long", {"name": "n" * 251}, "name", "string_type"),
    ("empty name", {"name": ""}, "name", "string_type"),
    ("numeric name", {"name": 7}, "name", "string_type"),
    ("NUL in name", {"name": "lo\x00ss"}, "name", "string_nul"),
    ("text value", {"value": "abc"}, "value", "float_type"),
    ("lower-case nan", {"value": "nan"}, "value", "float_type"),
    ("boolean value", {"value": True}, "value", "float_type"),
    ("null value", {"value": None}, "value", "float_type"),
    ("list value", {"value": [1]}, "value", "float_type"),
    ("fractional step", {"step": 1.5}, "step", "int_type"),
    ("text step", {"step": "3"}, "step", "int_type"),
    ("boolean step", {"step": True}, "step", "int_type"),
    ("step past int64", {"step": 2**63}, "step", "int_type"),
    ("text timestamp", {"timestamp": "yesterday"}, "timestamp", "datetime_parsing"),
    ("naive timestamp", {"timestamp": "2026-01-01T00:00:00"}, "timestamp", "timezone_aware"),
    ("numeric timestamp", {"timestamp": 1700000000}, "timestamp", "datetime_type"),
    ("timestamp before 1970", {"timestamp": "1969-12-31T23:59:59Z"}, "timestamp", "datetime_past"),
    ("unknown field", {"unit": "s"}, "unit", "extra_forbidden"),
]


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [case[1:] for case in BAD_POINTS],
    ids=[case[0] for case in BAD_POINTS],
)
async def test_a_bad_point_refuses_the_whole_batch(client, editor, run, pgsql, change, field, kind):
    points = [point("ok", 1.0), {**point("loss", 0.5), **change}, point("ok", 2.0)]

    errors = await refused(await post_metrics(client, editor, run["id"], points), pgsql, run)

    assert errors == [(f"metrics.1.{field}", kind)]


async def test_a_point_missing_name_or_value_is_refused(client, editor, run, pgsql):
    points = [{"value": 1.0}, {"name": "loss"}, "not an object"]

    errors = await refused(await post_metrics(client, editor, run["id"], points), pgsql, run)

    assert errors == [
        ("metrics.0.name", "string_type"),
        ("metrics.1.value", "float_type"),
        ("metrics.2", "model_type"),
    ]


async def test_10001_points_are_refused_and_10000_taken(client, editor, run, pgsql):
    many = [point("loss", float(n)) for n in range(10_001)]

    errors = await refused(await post_metrics(client, editor, run["id"], many), pgsql, run)
    assert errors == [("metrics", "too_long")]

    answer = await log_metrics(client, editor, run["id"], many[:10_000])
    assert answer["accepted"] == 10_000
    assert len(stored_points(pgsql, run["id"])) == 10_000


async def test_a_batch_heavier_than_other_bodies_may_be_is_taken(client, editor, run, pgsql):
    # 10,000 points with 250-character names: about 3 MB, past the 1 MiB other routes take.
    names = [f"{n:04d}" + "x" * 246 for n in range(10)]
    points = [point(names[n % 10], float(n), step=n) for n in range(10_000)]

    await log_metrics(client, editor, run["id"], points)

    assert len(stored_points(pgsql, run["id"])) == 10_000


async def test_a_body_past_the_metrics_body_limit_is_413(client, editor, run, pgsql):
    body = b'{"metrics": [' + b'{"name": "' + b"x" * (9 * 1024 * 1024) + b'", "value": 1}]}'

    response = await client.post(
        metrics_path(run["id"]),
        data=body,
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await refused(response, pgsql, run, status=413, code="payload_too_large")


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, [("metrics", "list_type")]),
        ({"metrics": []}, [("metrics", "too_short")]),
        ({"metrics": {"name": "x"}}, [("metrics", "list_type")]),
        ({"metrics": [point("x", 1)], "run": "r"}, [("run", "extra_forbidden")]),
        ({"metrics": [point("x", 1)], "batch_id": ""}, [("batch_id", "string_type")]),
        ({"metrics": [point("x", 1)], "batch_id": "b" * 201}, [("batch_id", "string_type")]),
        ({"metrics": [point("x", 1)], "batch_id": 5}, [("batch_id", "string_type")]),
        ({"metrics": [point("x", 1)], "batch_id": "a\x00b"}, [("batch_id", "string_nul")]),
        ([point("x", 1)], [("", "model_type")]),
    ],
)
async def test_a_bad_envelope_is_refused(client, editor, run, pgsql, body, errors):
    response = await client.post(metrics_path(run["id"]), json=body, headers=editor.headers)

    assert await refused(response, pgsql, run) == errors


async def test_a_timestamp_too_far_ahead_of_the_clock_is_refused(client, editor, run, clock, pgsql):
    ahead = (clock.now + timedelta(seconds=301)).isoformat()

    response = await post_metrics(client, editor, run["id"], [point("x", 1, timestamp=ahead)])

    assert await refused(response, pgsql, run) == [("metrics.0.timestamp", "datetime_future")]


async def test_every_bad_point_is_counted_and_the_first_hundred_listed(client, editor, run, pgsql):
    points = [point("x", "bad")] * 150 + [point("x", 1.0)]

    response = await post_metrics(client, editor, run["id"], points)

    body = await assert_problem(response, 422, "validation_failed")
    assert len(body["errors"]) == 100
    assert body["detail"] == "Nothing was stored: 150 of 151 points are invalid."
    assert stored_points(pgsql, run["id"]) == []


@pytest.mark.parametrize("raw", [b"{not json", b'{"metrics": [NaNa]}', b""])
async def test_a_body_that_is_not_json_is_400(client, editor, run, pgsql, raw):
    response = await client.post(
        metrics_path(run["id"]),
        data=raw,
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await refused(response, pgsql, run, status=400, code="malformed_json")


async def test_a_body_that_is_not_declared_json_is_415(client, editor, run, pgsql):
    response = await client.post(
        metrics_path(run["id"]),
        data=b'{"metrics": []}',
        headers={**editor.headers, "Content-Type": "text/plain"},
    )

    await refused(response, pgsql, run, status=415, code="unsupported_media_type")


async def test_a_viewer_gets_403_before_anything_is_stored(client, viewer, run, pgsql):
    response = await post_metrics(client, viewer, run["id"], [point("x", 1)])

    await refused(response, pgsql, run, status=403, code="forbidden")


async def test_a_bad_idempotency_key_is_400(client, editor, run, pgsql):
    response = await post_metrics(
        client, editor, run["id"], [point("x", 1)], headers={"Idempotency-Key": "bad key"}
    )

    await refused(response, pgsql, run, status=400, code="invalid_idempotency_key")
    await expect(await post_metrics(client, editor, run["id"], [point("x", 1)]), 201)
