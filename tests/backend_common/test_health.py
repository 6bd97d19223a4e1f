import pytest

from tests.plugins.services import SERVICES


@pytest.mark.parametrize("name", list(SERVICES))
async def test_health_and_ready_answer_ok(service_app_client, name):
    client = await service_app_client(name)

    health = await client.get("/health")
    ready = await client.get("/ready")

    assert health.status == 200
    assert await health.json() == {"status": "ok"}
    assert ready.status == 200, await ready.text()
    assert await ready.json() == {"status": "ready"}
