"""Run-metrics helpers for the experiment-service tests: log points over HTTP, read them back, and
see what the database holds.

logged = await log_metrics(client, editor, run["id"], [point("loss", 0.5, step=1)])
rows = stored_points(pgsql, run["id"])
"""

import math
import uuid
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient

from tests.experiment.factories import expect
from tests.plugins.auth_stub import StubUser


def point(name: str, value: Any, **fields: Any) -> dict[str, Any]:
    return {"name": name, "value": value, **fields}


def metrics_path(run_id: Any) -> str:
    return f"/api/v1/runs/{run_id}/metrics"


def series_path(run_id: Any, name: str) -> str:
    return f"{metrics_path(run_id)}/{quote(name, safe='')}"


async def post_metrics(
    client: TestClient,
    user: StubUser,
    run_id: Any,
    points: list[dict[str, Any]],
    *,
    headers: dict[str, str] | None = None,
    **body: Any,
) -> Any:
    return await client.post(
        metrics_path(run_id),
        json={"metrics": points, **body},
        headers={**user.headers, **(headers or {})},
    )


async def log_metrics(
    client: TestClient,
    user: StubUser,
    run_id: Any,
    points: list[dict[str, Any]],
    *,
    expect_status: int = 201,
    **body: Any,
) -> dict[str, Any]:
    """Logs the points and returns the answer, asserting its status."""
    return await expect(await post_metrics(client, user, run_id, points, **body), expect_status)


async def summaries(client: TestClient, user: StubUser, run_id: Any, **params: Any) -> Any:
    response = await client.get(metrics_path(run_id), params=params, headers=user.headers)
    return await expect(response, 200)


async def series(
    client: TestClient, user: StubUser, run_id: Any, name: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        series_path(run_id, name),
        params={key: str(value) for key, value in params.items()},
        headers=user.headers,
    )
    return await expect(response, 200)


async def whole_series(
    client: TestClient, user: StubUser, run_id: Any, name: str, **params: Any
) -> list[dict[str, Any]]:
    """Every point of the series, page after page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = await series(client, user, run_id, name, **params, **extra)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def stored_points(pgsql: Any, run_id: Any, name: str | None = None) -> list[dict[str, Any]]:
    """The run's points as stored, in (batch, place) order."""
    where = "run_id = %s" + (" AND name = %s" if name is not None else "")
    args = (str(run_id),) + ((name,) if name is not None else ())
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT batch_id, seq, name, step, value, timestamp, late FROM run_metrics"
            f" WHERE {where} ORDER BY batch_id, seq",
            args,
        )
        return [dict(row) for row in cursor]


def stored_batches(pgsql: Any, run_id: Any) -> list[dict[str, Any]]:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT id, client_batch_id, points, late, logged_by FROM run_metric_batches"
            " WHERE run_id = %s ORDER BY id",
            (str(run_id),),
        )
        return [dict(row) for row in cursor]


def stored_summary(pgsql: Any, run_id: Any, name: str) -> dict[str, Any] | None:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT count, finite_count, min, max, sum, last, last_step, last_timestamp"
            " FROM run_metric_summaries WHERE run_id = %s AND name = %s",
            (str(run_id), name),
        )
        row = cursor.fetchone()
        return dict(row) if row else None


def same_values(got: list[Any], want: list[float]) -> bool:
    """Lists of floats equal, NaN matching NaN."""
    return len(got) == len(want) and all(
        (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == b
        for a, b in zip(got, want, strict=True)
    )


def new_id() -> str:
    return str(uuid.uuid4())
