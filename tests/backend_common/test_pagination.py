import base64

import orjson
import pytest
from pydantic import ValidationError

from backend_common.errors import ProblemError
from backend_common.pagination import (
    DEFAULT_LIMIT,
    PageQuery,
    decode_cursor,
    encode_cursor,
    page_of,
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "key",
    [
        {"created_at": "2026-11-25T09:00:00+00:00", "id": "0b5c2a4e-3f0e-4d4e-9a43-8f1a2b3c4d5e"},
        {"name": "ünïcødé / + =", "n": 3},
        {},
    ],
)
def test_cursor_round_trip_gives_the_key_back(key):
    cursor = encode_cursor(key)

    assert decode_cursor(cursor) == key
    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "A",
        "not a cursor",
        "ünïcødé",
        _b64(b"\xff\xfe\x00"),
        _b64(b'{"id": '),
    ],
)
def test_decode_cursor_garbage_is_invalid_cursor(cursor):
    with pytest.raises(ProblemError) as caught:
        decode_cursor(cursor)

    assert (caught.value.status, caught.value.code) == (400, "invalid_cursor")


@pytest.mark.parametrize("value", [[1, 2], "id", 42, None, True])
def test_decode_cursor_non_object_is_invalid_cursor(value):
    with pytest.raises(ProblemError) as caught:
        decode_cursor(_b64(orjson.dumps(value)))

    assert (caught.value.status, caught.value.code) == (400, "invalid_cursor")


def _key(row: int) -> dict[str, int]:
    return {"id": row}


@pytest.mark.parametrize("count", [0, 1, 2])
def test_page_of_fewer_rows_than_limit_has_no_next_cursor(count):
    rows = list(range(count))

    items, next_cursor = page_of(rows, limit=3, key=_key)

    assert items == rows
    assert next_cursor is None


def test_page_of_exactly_limit_rows_has_no_next_cursor():
    items, next_cursor = page_of([1, 2, 3], limit=3, key=_key)

    assert items == [1, 2, 3]
    assert next_cursor is None


def test_page_of_more_rows_than_limit_cuts_and_points_at_last_item():
    items, next_cursor = page_of([1, 2, 3, 4], limit=3, key=_key)

    assert items == [1, 2, 3]
    assert next_cursor is not None
    assert decode_cursor(next_cursor) == {"id": 3}


def test_page_query_defaults():
    query = PageQuery()

    assert query.limit == DEFAULT_LIMIT == 50
    assert query.cursor is None


@pytest.mark.parametrize("limit", [1, "1", 50, 500, "500"])
def test_page_query_limit_in_bounds_is_accepted(limit):
    assert PageQuery(limit=limit).limit == int(limit)


@pytest.mark.parametrize("limit", [0, -1, 501, "many", "1.5"])
def test_page_query_limit_out_of_bounds_is_rejected(limit):
    with pytest.raises(ValidationError) as caught:
        PageQuery(limit=limit)

    assert [e["loc"] for e in caught.value.errors()] == [("limit",)]


def test_page_query_overlong_cursor_is_rejected():
    with pytest.raises(ValidationError):
        PageQuery(cursor="A" * 1025)
