"""Helpers of the read-side tests: queries, the history walked page by page, exports, and a
reference for aggregates computed here from the readings sent."""

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.experiment.factories import (
    create_run_in_status,
    expect,
    set_run_status,
)
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import (
    accepted,
    batch,
    bind,
    reading,
)

HISTORY = "/api/v1/telemetry"
AGGREGATE = "/api/v1/telemetry/aggregate"
EXPORT = "/api/v1/telemetry/export"
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
WIDTHS = {
    "10s": timedelta(seconds=10),
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)


def physical(raw: float) -> float:
    """The physical value of the sensors' profile, linear(a=2, b=1)."""
    return 2.0 * raw + 1.0


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def timezone_shifted(when: datetime) -> str:
    """The instant written with a +05:30 offset."""
    return when.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()


def aligned(after: datetime, width: timedelta) -> datetime:
    """The first bucket start (ORIGIN + k·width) at or after `after`."""
    return ORIGIN + width * math.ceil((after - ORIGIN) / width)


def bucket_of(when: datetime, width: timedelta) -> datetime:
    """The start of the bucket holding `when`."""
    return ORIGIN + width * ((when - ORIGIN) // width)


def query(
    sensors: Any = (),
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    **params: Any,
) -> list[tuple[str, str]]:
    """Query parameters: one sensor_id per sensor (dicts or ids), `from`/`to`, the rest as is."""
    items = [("sensor_id", str(s["id"] if isinstance(s, dict) else s)) for s in sensors]
    for name, value in (("from", start), ("to", end), *params.items()):
        if value is not None:
            items.append((name, value.isoformat() if isinstance(value, datetime) else str(value)))
    return items


async def get(ingest, user, url: str, params: list[tuple[str, str]], status: int = 200) -> Any:
    headers = {} if user is None else user.headers
    return await expect(await ingest.get(url, params=params, headers=headers), status)


async def problem(ingest, user, url: str, params: list[tuple[str, str]], status: int, code: str):
    headers = {} if user is None else user.headers
    return await assert_problem(await ingest.get(url, params=params, headers=headers), status, code)


async def history(ingest, user, params: list[tuple[str, str]], *, limit: int = 10_000) -> Any:
    """Every page of the history, followed through next_cursor; each page checked for size."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page_params = [*params, ("limit", str(limit)), *([("cursor", cursor)] if cursor else [])]
        page = await get(ingest, user, HISTORY, page_params)
        assert set(page) == {"items", "next_cursor"}
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(page["items"]) <= limit
            return items
        assert len(page["items"]) == limit, "only the last page may be short"


async def export(ingest, user, params: list[tuple[str, str]], fmt: str) -> tuple[Any, Any]:
    """The export's parsed content and the response."""
    response = await ingest.get(EXPORT, params=[*params, ("format", fmt)], headers=user.headers)
    text = await response.text()
    assert response.status == 200, text
    assert response.headers["Content-Disposition"] == f'attachment; filename="telemetry.{fmt}"'
    assert response.headers["Cache-Control"] == "no-store"
    if fmt == "csv":
        assert response.content_type == "text/csv"
        return list(csv.reader(io.StringIO(text, newline=""))), response
    assert response.content_type == "application/json"
    return json.loads(text), response


def csv_cell(value: Any) -> str:
    """What a CSV export writes for a history value."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def csv_rows_as_history(rows: list[list[str]]) -> list[dict[str, Any]]:
    header, *lines = rows
    records = [dict(zip(header, line, strict=True)) for line in lines]
    for record in records:
        if record["meta"]:
            record["meta"] = json.dumps(json.loads(record["meta"]))
    return records


def keys(items: list[dict[str, Any]]) -> list[tuple[str, datetime, float]]:
    return [(item["sensor_id"], instant(item["timestamp"]), item["raw_value"]) for item in items]


# --- the aggregate reference -------------------------------------------------------------------


def reference(
    readings: dict[Any, list[tuple[datetime, float]]], width: timedelta
) -> list[dict[str, Any]]:
    """Per sensor, channel and bucket, from readings (timestamp, value) of each sensor in send
    order; readings are keyed by sensor id (the default channel, `value`) or by (sensor id,
    channel)."""
    out = []
    for key in sorted(readings, key=lambda k: k if isinstance(k, tuple) else (k, "value")):
        sensor_id, signal = key if isinstance(key, tuple) else (key, "value")
        buckets: dict[datetime, list[tuple[datetime, float]]] = {}
        for when, value in sorted(readings[key], key=lambda r: r[0]):
            start = bucket_of(when, width)
            buckets.setdefault(start, []).append((when, value))
        for start, rows in sorted(buckets.items()):
            values = [value for _, value in rows]
            ends = [when for when, _ in rows[1:]] + [start + width]
            weights = [
                (end - when).total_seconds() for (when, _), end in zip(rows, ends, strict=True)
            ]
            total = sum(weights)
            twa = (
                sum(v * w for v, w in zip(values, weights, strict=True)) / total
                if total
                else sum(values) / len(values)
            )
            out.append(
                {
                    "sensor_id": sensor_id,
                    "signal": signal,
                    "bucket_start": start,
                    "count": len(values),
                    "min": min(values),
                    "max": max(values),
                    "avg": sum(values) / len(values),
                    "twa": twa,
                    "first": values[0],
                    "last": values[-1],
                }
            )
    return out


def comparable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate items with bucket_start as an instant and the averages approximate."""
    out = []
    for item in items:
        row = {**item, "bucket_start": instant(item["bucket_start"])}
        row["avg"] = pytest.approx(row["avg"], rel=1e-9)
        row["twa"] = pytest.approx(row["twa"], rel=1e-9)
        out.append(row)
    return out


async def bound_run(api, owner, experiment, sensors, status: str = "running") -> dict[str, Any]:
    run = await create_run_in_status(api, owner, experiment["id"], "draft")
    for sensor in sensors:
        await bind(api, owner, run["id"], sensor["id"])
    for step in {"running": ["running"], "succeeded": ["running", "succeeded"]}[status]:
        run = await set_run_status(api, owner, run["id"], step)
    return run


async def send_at(ingest, sensor, base: datetime, points: list[tuple[float, float]], **fields):
    """One batch of readings (seconds after `base`, raw value)."""
    readings = [reading(base + timedelta(seconds=s), value) for s, value in points]
    return await accepted(ingest, sensor["token"], batch(sensor, readings, **fields))
