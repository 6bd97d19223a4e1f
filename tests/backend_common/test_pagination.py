import base64

import orjson
import pytest
from pydantic import ValidationError

from backend_common.errors import find_problem
from backend_common.pagination import (
    DEFAULT_LIMIT,
    PAGINATION_ERRORS,
    CursorKey,
    InvalidCursor,
    PageQuery,
    PageRequest,
    decode_cursor,
    encode_cursor,
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
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(cursor)

    assert _answer(caught.value) == (400, "invalid_cursor")


@pytest.mark.parametrize("value", [[1, 2], "id", 42, None, True])
def test_decode_cursor_non_object_is_invalid_cursor(value):
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(_b64(orjson.dumps(value)))

    assert _answer(caught.value) == (400, "invalid_cursor")


def _answer(exc: Exception) -> tuple[int, str]:
    problem = find_problem(PAGINATION_ERRORS, exc)
    assert problem is not None
    return problem.status, problem.code


class _IdKey(CursorKey):
    id: int


def _key(row: int) -> _IdKey:
    return _IdKey(id=row)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_page_fewer_rows_than_limit_has_no_next_cursor(count):
    rows = list(range(count))

    page = PageRequest(limit=3).page(rows, key=_key)

    assert page.items == rows
    assert page.next_cursor is None


def test_page_exactly_limit_rows_has_no_next_cursor():
    page = PageRequest(limit=3).page([1, 2, 3], key=_key)

    assert page.items == [1, 2, 3]
    assert page.next_cursor is None


def test_page_more_rows_than_limit_cuts_and_points_at_last_item():
    page = PageRequest(limit=3).page([1, 2, 3, 4], key=_key)

    assert page.items == [1, 2, 3]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == {"id": 3}


def test_page_request_fetches_one_row_more_than_the_page():
    assert PageRequest(limit=3).fetch == 4


def test_page_request_after_gives_the_key_of_the_cursor():
    page = PageRequest(limit=1).page([7, 8], key=_key)

    assert PageRequest(cursor=page.next_cursor).after(_IdKey) == _IdKey(id=7)
    assert PageRequest().after(_IdKey) is None


@pytest.mark.parametrize("key", [{"id": "seven"}, {"id": 7, "extra": 1}, {}])
def test_page_request_after_another_lists_key_is_invalid_cursor(key):
    with pytest.raises(InvalidCursor):
        PageRequest(cursor=encode_cursor(key)).after(_IdKey)


def test_page_map_renders_items_and_keeps_the_cursor():
    page = PageRequest(limit=1).page([1, 2], key=_key).map(str)

    assert page.as_json() == {"items": ["1"], "next_cursor": page.next_cursor}
    assert page.next_cursor is not None


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


def test_page_query_gives_the_page_request():
    assert PageQuery(limit=7, cursor="abc").page == PageRequest(limit=7, cursor="abc")
