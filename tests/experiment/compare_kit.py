"""Helpers of the run comparison tests: metric points logged through the metrics API, readings
sent through telemetry ingest into a capture session, the compare routes, and what each answer
must hold, computed here from the seeded data on its own (not by the service's rules).

    await log_metrics(client, owner, run["id"], {"loss": [1.0, 0.5]})
    sent = await send_readings(ingest, sensor, run["id"], session, [(1.0, 0.5), (2.0, 0.75)])
    body = await compare(client, viewer, [run1["id"], run2["id"]], baseline=run2["id"])
"""

import itertools
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from aiohttp.test_utils import TestClient

from tests.experiment import metric_kit
from tests.experiment.factories import create_run, expect, set_run_status, start_capture
from tests.experiment.metric_kit import point
from tests.plugins.auth_stub import StubUser
from tests.telemetry_ingest.ingest_api import (
    accepted,
    batch,
    bind,
    create_sensor,
    linear,
    reading,
    stop_capture,
)

COMPARE = "/api/v1/runs:compare"
OVERLAY = "/api/v1/runs:compare/overlay"


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- metrics ------------------------------------------------------------------------------------


async def log_metrics(
    client: TestClient, user: StubUser, run_id: Any, series: dict[str, Sequence[float]]
) -> None:
    """Logs each named series into the run through the metrics API, steps 0, 1, … in order."""
    points = [
        point(name, json_number(value), step=step)
        for name, values in series.items()
        for step, value in enumerate(values)
    ]
    await metric_kit.log_metrics(client, user, run_id, points)


def summary_of(values: Sequence[float]) -> dict[str, Any]:
    """What a metric's entry must show for these values (logged at steps 0, 1, …)."""
    finite = [v for v in values if math.isfinite(v)]
    return {
        "count": len(values),
        "min": min(finite) if finite else None,
        "max": max(finite) if finite else None,
        "avg": math.fsum(finite) / len(finite) if finite else None,
        "last": values[-1],
        "last_step": len(values) - 1,
    }


def delta_of(value: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    def minus(name: str) -> float | None:
        a, b = value[name], baseline[name]
        if a is None or b is None or not math.isfinite(a) or not math.isfinite(b):
            return None
        return a - b

    return {name: minus(name) for name in ("min", "max", "avg", "last")}


def json_number(value: float | None) -> Any:
    """A float as the answers write it: NaN and infinities as strings."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


# --- telemetry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A reading as stored: its device time, its physical value (raw · 2 + 1) and signal."""

    timestamp: datetime
    physical: float
    signal: str = "value"


async def send_readings(
    ingest: Any,
    sensor: dict[str, Any],
    run_id: Any,
    session: dict[str, Any],
    readings: Sequence[tuple[float, float] | tuple[float, float, str]],
) -> list[Sent]:
    """Sends (seconds from the session's start, raw value[, signal]) readings of the sensor into
    the session in one batch; the sensor converts with linear(a=2, b=1)."""
    start = instant(session["started_at"])
    body, sent = [], []
    for offset, raw, *signal in readings:
        at = start + timedelta(seconds=offset)
        meta = {"signal": signal[0]} if signal else {}
        body.append(reading(at, raw, meta=meta) if meta else reading(at, raw))
        sent.append(Sent(at, 2.0 * raw + 1.0, *signal))
    answer = await accepted(
        ingest,
        sensor["token"],
        batch(sensor, body, run_id=str(run_id), capture_session_id=session["id"]),
    )
    assert answer["accepted"] == len(readings)
    return sent


def stats_of(sent: Sequence[Sent], stopped_at: datetime | None) -> dict[str, Any]:
    """count/min/max/avg/twa of one signal: each reading weighs the time until the next one,
    the last one until the session stopped (if after it); no weight at all gives the mean.
    Summed exactly, so values near the float limit do not overflow here either."""
    ordered = sorted(sent, key=lambda s: s.timestamp)  # stable: one batch keeps its order
    values = [Fraction(s.physical) for s in ordered]
    weights = [
        Fraction((after.timestamp - before.timestamp).total_seconds())
        for before, after in itertools.pairwise(ordered)
    ]
    last = ordered[-1].timestamp
    weights.append(Fraction(max(0.0, (stopped_at - last).total_seconds()) if stopped_at else 0))
    avg = sum(values) / len(values)
    total = sum(weights)
    twa = sum(v * w for v, w in zip(values, weights, strict=True)) / total if total else avg
    return {
        "count": len(values),
        "min": float(min(values)),
        "max": float(max(values)),
        "avg": float(avg),
        "twa": float(twa),
    }


def buckets_of(
    traces: dict[str, tuple[datetime, Sequence[Sent]]], points: int
) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """(width in µs, per session id its buckets) for readings by session (its start, readings):
    one width for all, the narrowest giving the longest-spanning session at most `points`."""
    offsets = {
        session_id: [((s.timestamp - start) // timedelta(microseconds=1), s.physical) for s in sent]
        for session_id, (start, sent) in traces.items()
    }
    span = max(max(o for o, _ in pairs) - min(o for o, _ in pairs) for pairs in offsets.values())
    width = span // (points - 1) + 1
    result: dict[str, list[dict[str, Any]]] = {}
    for session_id, pairs in offsets.items():
        by_bucket: dict[int, list[float]] = {}
        for offset, value in sorted(pairs, key=lambda pair: pair[0]):
            by_bucket.setdefault(offset // width, []).append(value)
        result[session_id] = [
            {
                "t": k * width / 1e6,
                "count": len(values),
                "min": min(values),
                "max": max(values),
                "first": values[0],
                "last": values[-1],
            }
            for k, values in sorted(by_bucket.items())
        ]
    return width, result


# --- the routes ---------------------------------------------------------------------------------


def id_params(ids: Sequence[Any], **params: Any) -> list[tuple[str, str]]:
    query = [("ids", str(run_id)) for run_id in ids]
    query += [(name, str(value)) for name, value in params.items()]
    return query


async def compare_response(client: Any, user: Any, ids: Sequence[Any], **params: Any) -> Any:
    return await client.get(COMPARE, params=id_params(ids, **params), headers=user.headers)


async def compare(
    client: Any, user: Any, ids: Sequence[Any], *, status: int = 200, **params: Any
) -> Any:
    return await expect(await compare_response(client, user, ids, **params), status)


async def overlay(
    client: Any, user: Any, ids: Sequence[Any], *, status: int = 200, **params: Any
) -> Any:
    response = await client.get(OVERLAY, params=id_params(ids, **params), headers=user.headers)
    return await expect(response, status)


def new_ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


# --- a scene: three runs, three sensors, three capture sessions ---------------------------------

_PARAMS = {
    "lr": 0.01,
    "layers": 4,
    "optimizer": "adam",
    "arch": {"depth": 4, "widths": [64, 32]},
    "augment": True,
    "cmd": "=1+2",
}
PARAMS = (
    _PARAMS,
    {**_PARAMS, "lr": 0.02, "layers": 4.0, "arch": {"widths": [64, 32], "depth": 4}, "augment": 1},
    {**_PARAMS, "seed": None},
)
# Same in every run: layers (4 and 4.0 are one number), optimizer, arch (key order aside), cmd.
DIFFERING_PARAMS = {"lr", "augment", "seed"}
METRICS = (
    {"loss": [1.0, 0.8, 0.5, math.nan, 0.4], "acc": [0.5, 0.7], "blowup": [math.inf, -math.inf]},
    {"loss": [0.9, 0.6, 0.3], "acc": [0.5, 0.7]},
    {"loss": [0.9, 0.6, 0.3], "acc": [0.5, 0.7]},
)
DIFFERING_METRICS = {"loss", "blowup"}


@dataclass
class Scene:
    """runs[0] has sensors a, b (two signals) and c (no profile: no physical values) bound, a
    stopped session whose readings of a all come before its start and a running one; runs[1]
    has a bound and one stopped session; runs[2] has neither sensors nor sessions."""

    runs: list[dict[str, Any]]
    sensors: dict[str, dict[str, Any]]
    sessions: list[dict[str, Any]]  # run 0's two, then run 1's
    sent: dict[tuple[str, str], list[Sent]]  # (session id, sensor letter) -> readings

    @property
    def ids(self) -> list[str]:
        return [run["id"] for run in self.runs]


async def build_scene(client, ingest, owner, experiment, clock, *, metrics: bool = True) -> Scene:
    # Profiles valid from an hour back, so readings before the sessions' start are converted.
    project = experiment["project_id"]
    clock.advance(-3600)
    sensors = {
        "a": await create_sensor(client, owner, project, profile=linear(2.0, 1.0)),
        "b": await create_sensor(client, owner, project, profile=linear(2.0, 1.0)),
        "c": await create_sensor(client, owner, project),
    }
    clock.advance(3600)
    runs = [await create_run(client, owner, experiment["id"], params=p) for p in PARAMS]
    for letter in "abc":
        await bind(client, owner, runs[0]["id"], sensors[letter]["id"])
    await bind(client, owner, runs[1]["id"], sensors["a"]["id"])
    if metrics:
        for run, series in zip(runs, METRICS, strict=True):
            await log_metrics(client, owner, run["id"], series)
    sent: dict[tuple[str, str], list[Sent]] = {}

    first = await started(client, owner, runs[0]["id"])
    readings_a = [(-3.0, 1.0), (-2.0, 2.0), (-1.5, 4.0), (-1.0, 3.0)]
    sent[(first["id"], "a")] = await send_readings(
        ingest, sensors["a"], runs[0]["id"], first, readings_a
    )
    temperature = [
        (0.5, 10.0, "temperature"),
        (1.5, 12.0, "temperature"),
        (3.0, 11.0, "temperature"),
    ]
    readings_b = [*temperature, (0.5, 100.0, "pressure"), (2.5, 90.0, "pressure")]
    sent[(first["id"], "b")] = await send_readings(
        ingest, sensors["b"], runs[0]["id"], first, readings_b
    )
    await send_readings(ingest, sensors["c"], runs[0]["id"], first, [(1.0, 5.0)])
    first = await stop_capture(client, owner, runs[0]["id"], first["id"])
    second = await start_capture(client, owner, runs[0]["id"])
    readings = [(0.0, 1.0), (0.25, 5.0), (0.5, -2.0)]
    sent[(second["id"], "a")] = await send_readings(
        ingest, sensors["a"], runs[0]["id"], second, readings
    )

    third = await started(client, owner, runs[1]["id"])
    readings = [(-1.0, 0.5), (0.1, 1.5), (0.2, 2.5), (5.0, 1.0)]
    sent[(third["id"], "a")] = await send_readings(
        ingest, sensors["a"], runs[1]["id"], third, readings
    )
    third = await stop_capture(client, owner, runs[1]["id"], third["id"])
    return Scene(runs, sensors, [first, second, third], sent)


async def started(client, owner, run_id: str) -> dict[str, Any]:
    """A capture session started in the run, which is set running first."""
    await set_run_status(client, owner, run_id, "running")
    return await start_capture(client, owner, run_id)


def assert_close(actual: Any, expected: Any, path: str = "") -> None:
    """`actual == expected`, floats within 1e-12 (relative) of each other, at any depth."""
    if isinstance(expected, float) and not isinstance(actual, bool):
        assert isinstance(actual, int | float), f"{path}: {actual!r} is not a number"
        assert math.isclose(actual, expected, rel_tol=1e-12, abs_tol=1e-12), (
            f"{path}: {actual!r} != {expected!r}"
        )
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        assert list(actual) == list(expected), f"{path}: keys {list(actual)} != {list(expected)}"
        for key, value in expected.items():
            assert_close(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not an array"
        assert len(actual) == len(expected), f"{path}: {len(actual)} items, not {len(expected)}"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_close(got, want, f"{path}.{index}")
    else:
        same_kind = isinstance(actual, bool) == isinstance(expected, bool)
        assert same_kind, f"{path}: {actual!r} != {expected!r}"
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
