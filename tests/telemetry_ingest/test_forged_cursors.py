"""Forged cursors (integers past their columns, instants out of range, wrong types) on every
paged telemetry route: each is 400 invalid_cursor problem+json, never a 500."""

import base64

import orjson
import pytest

from tests.telemetry_ingest.readings_api import HISTORY, query
from tests.telemetry_ingest.sse import STREAM

VALID_T = "2026-01-01T00:00:00Z"


def forged(**key) -> str:
    """A cursor of ours in shape, with these fields (defaults: a valid key)."""
    fields = {"t": VALID_T, "b": 1, "s": 0, **key}
    data = orjson.dumps({name: value for name, value in fields.items() if value is not ...})
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


FORGED = {
    # Integers past the columns they are compared with (batch_id bigint, seq integer).
    "b_past_bigint": raw(b'{"t": "2026-01-01T00:00:00Z", "b": 9223372036854775808, "s": 0}'),
    "b_huge": raw(b'{"t": "2026-01-01T00:00:00Z", "b": 100000000000000000000000000000, "s": 0}'),
    "b_negative_past_bigint": raw(
        b'{"t": "2026-01-01T00:00:00Z", "b": -9223372036854775809, "s": 0}'
    ),
    "s_past_integer": forged(s=2**31),
    "s_past_bigint": forged(s=2**63),
    "b_negative": forged(b=-1),
    "s_negative": forged(s=-1),
    # Instants that no timestamptz holds, or only with an offset that pushes them out.
    "t_last_instant_with_offset": forged(t="9999-12-31T23:59:59.999999-23:59"),
    "t_first_instant_with_offset": forged(t="0001-01-01T00:00:00+23:59"),
    "t_latest": forged(t="9999-12-31T23:59:59.999999Z"),
    "t_year_10000": forged(t="10000-01-01T00:00:00Z"),
    "t_naive": forged(t="2026-01-01T00:00:00"),
    "t_number": forged(t=1767225600),
    "t_huge_number": raw(b'{"t": 1e300, "b": 1, "s": 0}'),
    "t_infinity": forged(t="infinity"),
    # Wrong types and shapes.
    "b_true": forged(b=True),
    "b_float": forged(b=1.5),
    "b_numeric_string": forged(b="1"),
    "s_null": forged(s=None),
    "t_list": forged(t=[VALID_T]),
    "extra_field": forged(x=1),
    "missing_field": forged(s=...),
    "not_an_object": raw(b'"2026-01-01T00:00:00Z"'),
    "nested_deep": raw(b"[" * 300 + b"]" * 300),
    "not_base64": "%%%",
    "not_utf8": raw(b'{"t": "\xff\xfe", "b": 1, "s": 0}'),
}


@pytest.mark.parametrize("sensor_count", [1, 2], ids=["one_sensor", "merged_sensors"])
@pytest.mark.parametrize("cursor", FORGED.values(), ids=FORGED.keys())
async def test_forged_history_cursors_are_400(ingest, owner, sensors, sensor_count, cursor):
    params = [*query(sensors[:sensor_count]), ("cursor", cursor)]

    response = await ingest.get(HISTORY, params=params, headers=owner.headers)

    assert response.status == 400, await response.text()
    assert response.content_type == "application/problem+json"
    assert (await response.json())["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "last_event_id",
    ["9223372036854775808", "99999999999999999999999", "-1", "1e9", "١٢", "0x10", "1.0"],
)
async def test_forged_last_event_ids_are_400(ingest, owner, sensor, last_event_id):
    headers = {**owner.headers, "Last-Event-ID": last_event_id}

    response = await ingest.get(STREAM, params=query([sensor]), headers=headers)

    assert response.status == 400, await response.text()
    assert response.content_type == "application/problem+json"
    assert (await response.json())["code"] == "invalid_last_event_id"
