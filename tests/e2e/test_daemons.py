"""The four services as real processes (started by testsuite) against the test PostgreSQL."""

import pytest

from tests.plugins.services import SERVICES


@pytest.mark.parametrize("name", list(SERVICES))
async def test_daemon_is_ready_and_echoes_request_id(daemons, name):
    response = await daemons[name].get("/ready", headers={"X-Request-Id": f"e2e-{name}"})

    assert response.status == 200
    assert response.json() == {"status": "ready"}
    assert response.headers["X-Request-Id"] == f"e2e-{name}"


async def test_daemon_unknown_route_is_problem_json(daemons):
    response = await daemons["experiment"].get("/api/v1/nothing-here")

    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found"
    assert body["request_id"] == response.headers["X-Request-Id"]
