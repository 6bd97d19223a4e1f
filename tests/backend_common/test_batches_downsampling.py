"""The shared pieces of batch ingest (backend_common.batches), downsampling that keeps extremes
(backend_common.downsampling) and late marking (backend_common.statuses.arrival)."""

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend_common.batches import (
    MAX_ERRORS_LISTED,
    BatchErrors,
    BatchInvalid,
    Same,
    client_batch_id,
    envelope,
    insert_batch_sql,
    instant,
    items,
    rows,
)
from backend_common.downsampling import Extremes, buckets_spanned, keep_extremes, narrowest
from backend_common.statuses import Arrival, CaptureStatus, RunStatus, arrival

LATEST = datetime(2030, 1, 1, tzinfo=UTC)


def test_rows_zip_columns_and_repeat_the_same_values():
    assert list(rows([1, 2, 3], Same("x"), iter("abc"))) == [
        (1, "x", "a"),
        (2, "x", "b"),
        (3, "x", "c"),
    ]


def test_batch_errors_count_every_bad_item_but_list_the_first_hundred():
    errors = BatchErrors("points", "point")
    for n in range(150):
        errors.add(f"metrics.{n}.value", "bad", "float_type", item=n)

    with pytest.raises(BatchInvalid) as raised:
        errors.check(200)

    assert len(raised.value.errors) == MAX_ERRORS_LISTED
    assert (raised.value.rejected, raised.value.items) == (150, 200)
    assert raised.value.detail == "Nothing was stored: 150 of 200 points are invalid."


def test_a_batch_without_errors_passes_its_check():
    BatchErrors("points", "point").check(3)


@pytest.mark.parametrize(
    ("value", "expected", "kind"),
    [
        (None, None, None),
        ("b-1", "b-1", None),
        ("", None, "string_type"),
        ("b" * 201, None, "string_type"),
        (7, None, "string_type"),
        ("a\x00b", None, "string_nul"),
    ],
)
def test_client_batch_ids(value, expected, kind):
    errors = BatchErrors("points", "point")

    assert client_batch_id(value, errors) == expected
    assert [e["type"] for e in errors.listed] == ([kind] if kind else [])


def test_an_envelope_must_be_an_object_with_known_fields():
    errors = BatchErrors("points", "point")
    with pytest.raises(BatchInvalid):
        envelope([1], frozenset({"metrics"}), errors)

    errors = BatchErrors("points", "point")
    assert envelope({"metrics": [], "x": 1}, frozenset({"metrics"}), errors) == {
        "metrics": [],
        "x": 1,
    }
    assert [(e["field"], e["type"]) for e in errors.listed] == [("x", "extra_forbidden")]


@pytest.mark.parametrize(
    ("value", "kept", "kind"),
    [
        ([1, 2], [1, 2], None),
        ([], [], "too_short"),
        ([1] * 4, [], "too_long"),
        ({}, [], "list_type"),
    ],
)
def test_items_are_a_bounded_non_empty_list(value, kept, kind):
    errors = BatchErrors("points", "point")

    assert items(value, "metrics", errors, most=3) == kept
    assert [e["type"] for e in errors.listed] == ([kind] if kind else [])


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("2026-01-01T00:00:00Z", None),
        ("2026-01-01T00:00:00", "timezone_aware"),
        ("soon", "datetime_parsing"),
        (5, "datetime_type"),
        ("1969-12-31T23:59:59Z", "datetime_past"),
        ("2030-01-01T00:00:01Z", "datetime_future"),
    ],
)
def test_instants(value, kind):
    errors = BatchErrors("points", "point")

    got = instant(value, "t", errors, item=0, latest=LATEST)

    assert (got is None) == (kind is not None)
    assert [e["type"] for e in errors.listed] == ([kind] if kind else [])


def test_insert_batch_sql_notifies_a_pointer_on_the_last_parameter():
    sql = insert_batch_sql("b", ("run_id", "points"), pointer={"run": "$1::text"})

    assert "INSERT INTO b (run_id, points)" in sql
    assert "VALUES ($1, $2)" in sql
    assert "ON CONFLICT DO NOTHING" in sql
    assert "pg_notify($3, json_build_object('batch', id, 'run', $1::text)::text)" in sql


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (RunStatus.DRAFT, Arrival.ON_TIME),
        (RunStatus.RUNNING, Arrival.ON_TIME),
        (RunStatus.SUCCEEDED, Arrival.LATE),
        (RunStatus.FAILED, Arrival.LATE),
        (RunStatus.ARCHIVED, Arrival.REFUSED),
        (CaptureStatus.BACKFILLING, Arrival.ON_TIME),
        (CaptureStatus.SUCCEEDED, Arrival.LATE),
        (CaptureStatus.ARCHIVED, Arrival.REFUSED),
    ],
)
def test_finished_runs_take_data_late_and_archived_ones_refuse_it(status, expected):
    assert arrival(status) is expected


def test_buckets_spanned_on_steps_and_instants():
    assert buckets_spanned(0, 10, 5, 0) == 2
    assert buckets_spanned(3, 11, 5, 0) == 3
    assert buckets_spanned(-3, 2, 4, 0) == 2
    day = datetime(2026, 1, 1, tzinfo=UTC)
    assert buckets_spanned(day, day + timedelta(hours=2), timedelta(hours=1), day) == 2


def test_narrowest_takes_the_first_width_that_fits_else_the_last():
    widths = [("a", 1), ("b", 10), ("c", 100)]
    assert narrowest(widths, 0, 50, most=5, origin=0) == "b"
    assert narrowest(widths, 0, 5000, most=5, origin=0) == "c"


def test_extremes_keep_first_lowest_highest_and_last_finite():
    merged = Extremes.of(5, 1.0)
    for step, value in [(3, math.nan), (9, -2.0), (7, math.inf), (12, 4.0), (15, math.nan)]:
        merged.add(Extremes.of(step, value))

    assert (merged.first[0], merged.low, merged.high, merged.last[0]) == (
        3,
        (9, -2.0),
        (12, 4.0),
        15,
    )
    assert [p[0] for p in merged.points()] == [3, 9, 12, 15]


@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.floats(allow_nan=True, allow_infinity=True)),
        min_size=1,
        max_size=200,
    ),
    st.integers(1, 40),
    st.integers(1, 3),
)
def test_merged_parts_equal_the_whole_bucketed_at_once(points, width, pieces):
    """Any split of a series into parts, merged, keeps what the whole keeps."""
    points = sorted(dict(points).items())  # one value a step
    whole = keep_extremes((s // width, Extremes.of(s, v)) for s, v in points)
    rng = random.Random(len(points) * width)
    parts = []
    for bucket in sorted({s // width for s, _ in points}):
        members = [(s, v) for s, v in points if s // width == bucket]
        cuts = sorted(rng.sample(range(1, len(members)), min(pieces, len(members) - 1)))
        for chunk in (members[a:b] for a, b in zip([0, *cuts], [*cuts, len(members)], strict=True)):
            part = Extremes.of(*chunk[0])
            for s, v in chunk[1:]:
                part.add(Extremes.of(s, v))
            parts.append((bucket, part))

    def same(a, b):
        return a[0] == b[0] and (a[1] == b[1] or (math.isnan(a[1]) and math.isnan(b[1])))

    merged = keep_extremes(parts)
    assert len(merged) == len(whole)
    assert all(same(a, b) for a, b in zip(merged, whole, strict=True))
