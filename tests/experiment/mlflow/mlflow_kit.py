"""Calling the MLflow door over HTTP as MLflow's client would, and reading its answers."""

from typing import Any

from aiohttp.test_utils import TestClient

from tests.api_key_kit import Person

API = "/api/2.0/mlflow"


async def call(
    client: TestClient, who: Person, method: str, path: str, status: int = 200, **kwargs: Any
) -> Any:
    """The JSON answer, after checking its status (and MLflow's error shape for an error)."""
    response = await client.request(method, API + path, headers=who.headers, **kwargs)
    body = await response.json()
    assert response.status == status, f"expected {status}, got {response.status}: {body}"
    assert response.content_type == "application/json"
    if status >= 400:
        assert set(body) == {"error_code", "message"}, body
    return body


async def refused(
    client: TestClient, who: Person, method: str, path: str, status: int, code: str, **kwargs: Any
) -> str:
    """Asserts MLflow's error with that status and code; returns its message."""
    body = await call(client, who, method, path, status, **kwargs)
    assert body["error_code"] == code, body
    return body["message"]


async def new_run(client: TestClient, who: Person, name: str = "wind tunnel") -> dict[str, Any]:
    """A running run in a new experiment of the key's project (MLflow's view of it)."""
    experiment = await call(client, who, "POST", "/experiments/create", json={"name": name})
    created = await call(
        client,
        who,
        "POST",
        "/runs/create",
        json={"experiment_id": experiment["experiment_id"], "run_name": "baseline"},
    )
    return created["run"]
