"""API keys through the gateway: `Authorization: Bearer etpk_...` goes on to the service as it
came (the gateway never reads a key as a JWT nor refreshes it), /api/v1/api-keys is the auth
service's, and the per-session limit counts a key by its id."""

import uuid

import pytest

from tests.gateway.conftest import EXPERIMENT, TELEMETRY
from tests.problems import assert_problem

KEY = f"etpk_{uuid.uuid4().hex}_{'A' * 43}"
KEY_HEADERS = {"Authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize(
    ("method", "path", "prefix"),
    [
        ("GET", "/api/v1/experiments", EXPERIMENT),
        ("POST", "/api/v1/experiments/e1/runs", EXPERIMENT),
        ("GET", "/api/v1/telemetry", TELEMETRY),
        ("GET", "/api/v1/projects", "/auth"),
        ("GET", "/api/v1/api-keys", "/auth"),
        ("POST", "/api/v1/api-keys", "/auth"),
        ("DELETE", "/api/v1/api-keys/k1", "/auth"),
        ("GET", "/api/v1/auth/api-key", "/auth"),
    ],
)
async def test_a_key_goes_on_unchanged_to_the_service_owning_the_path(
    gateway, mockserver, method, path, prefix
):
    @mockserver.handler(f"{prefix}{path}")
    def handler(request):
        return mockserver.make_response(json={"served_by": prefix})

    body = b"{}" if method == "POST" else None
    response = await gateway.request(method, path, data=body, headers=KEY_HEADERS)

    # No cookie: an unsafe request with a key needs no CSRF token.
    assert response.status == 200, await response.text()
    assert await response.json() == {"served_by": prefix}
    forwarded = handler.next_call()["request"]
    assert forwarded.headers["Authorization"] == f"Bearer {KEY}"


async def test_the_services_refusal_of_a_key_comes_back(gateway, mockserver):
    challenge = 'Bearer realm="etp", error="invalid_token"'

    @mockserver.handler(f"{EXPERIMENT}/api/v1/experiments")
    def _refuse(request):
        return mockserver.make_response(
            json={"status": 401, "code": "unauthorized"},
            status=401,
            headers={"WWW-Authenticate": challenge},
        )

    response = await gateway.get("/api/v1/experiments", headers=KEY_HEADERS)

    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == challenge


async def test_the_api_limit_counts_a_key_by_its_id(start_gateway, mockserver):
    client = await start_gateway(api_burst_per_session=2, api_rate_per_session=0.5)

    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def experiments(request):
        return {}

    key_id = uuid.uuid4().hex
    guesses = [{"Authorization": f"Bearer etpk_{key_id}_{n * 43}"} for n in "ABC"]
    other_key = {"Authorization": f"Bearer etpk_{uuid.uuid4().hex}_{'A' * 43}"}

    statuses = [(await client.get("/api/v1/experiments", headers=h)).status for h in guesses[:2]]
    third = await client.get("/api/v1/experiments", headers=guesses[2])

    assert statuses == [200, 200]
    await assert_problem(third, 429, "too_many_requests")
    assert (await client.get("/api/v1/experiments", headers=other_key)).status == 200
    assert experiments.times_called == 3
