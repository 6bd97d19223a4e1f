"""Conversion profiles: the pure functions, checked against reference computations."""

import bisect
import math
import struct
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from backend_common.conversion import ConversionError, Linear, Polynomial, Table, convert, parse

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
small = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
either = st.booleans()


@st.composite
def tables(draw, extrapolate=either):
    xs = sorted(draw(st.sets(small, min_size=2, max_size=12)))
    ys = draw(st.lists(small, min_size=len(xs), max_size=len(xs)))
    return Table(
        points=[{"x": x, "y": y} for x, y in zip(xs, ys, strict=True)],
        extrapolate=draw(extrapolate),
    )


@given(a=values, b=values, x=values)
def test_linear_equals_a_x_plus_b(a, b, x):
    assert convert(Linear(a=a, b=b), x) == pytest.approx(a * x + b, rel=1e-12, abs=1e-9)


@given(coefficients=st.lists(small, min_size=1, max_size=6), x=small)
def test_polynomial_equals_exact_sum_of_terms(coefficients, x):
    exact = sum(Fraction(c) * Fraction(x) ** i for i, c in enumerate(coefficients))
    scale = sum(abs(c) * abs(x) ** i for i, c in enumerate(coefficients))

    result = convert(Polynomial(coefficients=coefficients), x)

    assert math.isclose(result, float(exact), rel_tol=1e-9, abs_tol=1e-12 * max(scale, 1.0))


@given(table=tables(), data=st.data())
def test_table_between_two_points_stays_between_their_values(table, data):
    i = data.draw(st.integers(min_value=0, max_value=len(table.points) - 2))
    p, q = table.points[i], table.points[i + 1]
    x = data.draw(st.floats(min_value=p.x, max_value=q.x))

    y = convert(table, x)

    assert min(p.y, q.y) - 1e-9 <= y <= max(p.y, q.y) + 1e-9


@given(table=tables(), data=st.data())
def test_table_is_monotone_on_each_segment(table, data):
    i = data.draw(st.integers(min_value=0, max_value=len(table.points) - 2))
    p, q = table.points[i], table.points[i + 1]
    x1, x2 = sorted(data.draw(st.lists(st.floats(p.x, q.x), min_size=2, max_size=2)))

    y1, y2 = convert(table, x1), convert(table, x2)

    if q.y >= p.y:
        assert y1 <= y2 + 1e-9
    else:
        assert y1 >= y2 - 1e-9


@given(table=tables())
def test_table_maps_each_point_to_its_value(table):
    for point in table.points:
        assert convert(table, point.x) == pytest.approx(point.y, abs=1e-9)


@given(table=tables(extrapolate=st.just(False)), beyond=st.floats(1e-3, 1e6))
def test_table_clamped_outside_its_range(table, beyond):
    first, last = table.points[0], table.points[-1]

    assert convert(table, first.x - beyond) == first.y
    assert convert(table, last.x + beyond) == last.y


@given(table=tables(extrapolate=st.just(True)), beyond=st.floats(1e-3, 1e3))
def test_table_extrapolated_along_its_end_segments(table, beyond):
    p, q = table.points[-2], table.points[-1]
    x = q.x + beyond
    exact = Fraction(p.y) + (Fraction(q.y) - Fraction(p.y)) * (Fraction(x) - Fraction(p.x)) / (
        Fraction(q.x) - Fraction(p.x)
    )

    if abs(exact) > 1e300:
        with pytest.raises(ConversionError):
            convert(table, x)
    else:
        assert convert(table, x) == pytest.approx(float(exact), rel=1e-9, abs=1e-6)


def test_table_flat_segment_between_very_close_points_stays_flat():
    table = Table(
        points=[{"x": 0.0, "y": 0.0}, {"x": 2.2250738585e-313, "y": 0.0}], extrapolate=True
    )

    assert convert(table, 1.0) == 0.0


def test_polynomial_overflow_is_a_conversion_error():
    with pytest.raises(ConversionError):
        convert(Polynomial(coefficients=[0, 0, 0, 0, 0, 1]), 1e300)


def test_non_finite_raw_value_is_a_conversion_error():
    with pytest.raises(ConversionError):
        convert(Linear(a=1), math.nan)


@pytest.mark.parametrize(
    ("kind", "payload", "field"),
    [
        ("linear", {"a": "NaN"}, "a"),
        ("linear", {"a": 1, "b": float("inf")}, "b"),
        ("polynomial", {"coefficients": [1.0] * 10}, "coefficients"),
        ("polynomial", {"coefficients": []}, "coefficients"),
        ("table", {"points": [{"x": 2, "y": 0}, {"x": 1, "y": 1}]}, "points"),
        ("table", {"points": [{"x": 1, "y": 0}, {"x": 1, "y": 1}]}, "points"),
        ("table", {"points": [{"x": 1, "y": 0}]}, "points"),
        ("table", {"points": [{"x": 1, "y": 0}, {"x": 2}]}, "points.1.y"),
        ("linear", {"a": 1, "c": 2}, "c"),
    ],
)
def test_bad_payload_is_refused_naming_the_field(kind, payload, field):
    with pytest.raises(ValidationError) as caught:
        parse(kind, payload)

    locations = [".".join(str(part) for part in error["loc"]) for error in caught.value.errors()]
    assert field in locations, locations


# --- tables: the precomputed lookup against the per-reading pass it replaced ------------------


def reference_table_convert(table: Table, x: float) -> float:
    """Table.convert as it was: the x list rebuilt and the points read on every reading."""
    xs = [point.x for point in table.points]
    if x <= xs[0] or x >= xs[-1]:
        if not table.extrapolate:
            return table.points[0].y if x <= xs[0] else table.points[-1].y
        left = 0 if x <= xs[0] else len(xs) - 2
    else:
        left = bisect.bisect_right(xs, x) - 1
    p, q = table.points[left], table.points[left + 1]
    value = p.y + (q.y - p.y) * (x - p.x) / (q.x - p.x)
    if not math.isfinite(value):
        raise ConversionError("the physical value is out of range")
    return value


def outcome(function, *args):
    """The result's bits (so -0.0 and 0.0 differ), or the exception's type."""
    try:
        return struct.pack("<d", function(*args))
    except ConversionError:
        return ConversionError


finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def big_tables(draw):
    """Tables of up to 1,000 points over any finite floats (also huge ones that overflow)."""
    coordinates = draw(st.sampled_from([small, values, finite]))
    xs = sorted(draw(st.sets(coordinates, min_size=2, max_size=1000)))
    ys = draw(st.lists(coordinates, min_size=len(xs), max_size=len(xs)))
    return Table(
        points=[{"x": x, "y": y} for x, y in zip(xs, ys, strict=True)],
        extrapolate=draw(either),
    )


@settings(max_examples=300, deadline=None)
@given(table=big_tables(), data=st.data())
def test_table_lookup_is_bit_identical_to_the_reference(table, data):
    xs = [point.x for point in table.points]
    raws = data.draw(
        st.lists(
            st.one_of(
                finite,
                st.sampled_from(xs),  # exactly on a point
                st.floats(min_value=xs[0], max_value=xs[-1]),  # inside
            ),
            min_size=1,
            max_size=50,
        )
    )

    for raw in raws:
        assert outcome(table.convert, raw) == outcome(reference_table_convert, table, raw), raw
        assert outcome(convert, table, raw) == outcome(reference_table_convert, table, raw), raw


def test_a_table_is_read_once_per_profile_not_once_per_reading():
    table = Table(points=[{"x": float(i), "y": 2.0 * i} for i in range(1000)])
    table.convert(1.5)
    reads = 0

    class CountingPoints(list):
        def __iter__(self):
            nonlocal reads
            reads += 1
            return super().__iter__()

        def __getitem__(self, index):
            nonlocal reads
            reads += 1
            return super().__getitem__(index)

    object.__setattr__(table, "points", CountingPoints(table.points))
    results = [table.convert(x / 10) for x in range(-10, 10_010)]

    assert reads == 0
    assert results[15] == 1.0
