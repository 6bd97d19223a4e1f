"""API keys in the experiment service, verified by the real auth service (in-process): a key
acts as its user within its scope, and a key revoked, expired or of a deleted user is refused
within the key cache's TTL."""

import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from experiment_service.app import create_app
from tests.api_key_kit import RealAuth
from tests.experiment.factories import create_experiment, create_run, expect
from tests.plugins.waiting import eventually
from tests.problems import assert_problem

KEY_TTL = 1.5


@pytest.fixture
async def auth(service_app_client) -> RealAuth:
    return RealAuth(await service_app_client("auth"))


@pytest.fixture
async def client(pgsql, aiohttp_client, make_settings, clock, auth):
    """The experiment service asking the real auth service; roles kept a minute, so that only the
    key cache bounds how long a revoked key still works."""
    settings = make_settings(
        "experiment", auth_url=auth.url, role_cache_ttl=60, api_key_cache_ttl=KEY_TTL
    )
    return await aiohttp_client(create_app(settings, clock=clock))


@pytest.fixture
async def alice(auth):
    return await auth.sign_up("alice")


@pytest.fixture
async def project(auth, alice):
    return await auth.project(alice)


async def test_an_editor_key_creates_a_run_as_its_user(client, auth, alice, project):
    key = auth.through(alice, await auth.key(alice, project_id=project, role="editor"))

    experiment = await create_experiment(client, key, project)
    run = await create_run(client, key, experiment["id"], name="from CI")

    assert experiment["owner_id"] == alice.id
    stored = await expect(await client.get(f"/api/v1/runs/{run['id']}", headers=alice.headers), 200)
    assert stored["name"] == "from CI"
    audit = await expect(
        await client.get("/api/v1/audit", params={"project_id": project}, headers=alice.headers),
        200,
    )
    assert {entry["actor_id"] for entry in audit["items"]} == {alice.id}
    assert {entry["actor_role"] for entry in audit["items"]} == {"editor"}


async def test_a_viewer_capped_key_cannot_create_a_run(client, auth, alice, project):
    experiment = await create_experiment(client, alice, project)
    key = auth.through(alice, await auth.key(alice, role="viewer"))

    response = await client.post(
        f"/api/v1/experiments/{experiment['id']}/runs", json={"name": "nope"}, headers=key.headers
    )

    await assert_problem(response, 403, "forbidden")
    await expect(
        await client.get(f"/api/v1/experiments/{experiment['id']}", headers=key.headers), 200
    )
    runs = await expect(
        await client.get(
            "/api/v1/runs", params={"experiment_id": experiment["id"]}, headers=alice.headers
        ),
        200,
    )
    assert runs["items"] == []


async def test_a_bound_key_finds_nothing_in_its_users_other_projects(
    client,
    auth,
    alice,
    project,
):
    other = await auth.project(alice)
    elsewhere = await create_experiment(client, alice, other)
    key = auth.through(alice, await auth.key(alice, project_id=project))

    hidden = await client.get(f"/api/v1/experiments/{elsewhere['id']}", headers=key.headers)
    refused = await client.post(
        "/api/v1/experiments", json={"project_id": other, "name": "x"}, headers=key.headers
    )

    await assert_problem(hidden, 404, "experiment_not_found")
    assert refused.status == 404, await refused.text()
    await create_experiment(client, key, project)  # its own project is open to it


async def test_a_revoked_key_is_refused_within_the_ttl(client, auth, alice, project):
    created = await auth.key(alice, project_id=project)
    key = auth.through(alice, created)
    url = f"/api/v1/experiments/{(await create_experiment(client, alice, project))['id']}"
    await expect(await client.get(url, headers=key.headers), 200)

    await auth.revoke(alice, created)
    revoked_at = time.monotonic()
    still = await client.get(url, headers=key.headers)  # the kept grant

    async def refused():
        response = await client.get(url, headers=key.headers)
        return response if response.status == 401 else None

    response = await eventually(refused, within=KEY_TTL + 1.0, what="the revoked key refused")
    assert time.monotonic() - revoked_at <= KEY_TTL + 1.0
    assert still.status == 200
    body = await assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="etp", error="invalid_token"'
    assert body["detail"] == "Invalid API key: it is unknown or was revoked."


async def test_an_expired_key_is_refused_from_its_expiry_on(client, auth, alice, project):
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    key = auth.through(
        alice, await auth.key(alice, project_id=project, expires_at=expires_at.isoformat())
    )
    url = f"/api/v1/experiments/{(await create_experiment(client, alice, project))['id']}"
    await expect(await client.get(url, headers=key.headers), 200)

    async def refused():
        response = await client.get(url, headers=key.headers)
        return response if response.status == 401 else None

    response = await eventually(refused, within=1.0 + KEY_TTL, what="the expired key refused")
    assert datetime.now(UTC) >= expires_at
    body = await assert_problem(response, 401, "unauthorized")
    assert body["detail"] == "Invalid API key: it has expired."


async def test_the_key_of_a_deleted_user_is_refused(
    client,
    auth,
    alice,
    project,
    database_url,
):
    key = auth.through(alice, await auth.key(alice))
    url = f"/api/v1/experiments/{(await create_experiment(client, alice, project))['id']}"
    await expect(await client.get(url, headers=key.headers), 200)

    conn = await asyncpg.connect(database_url("auth"))
    try:
        await conn.execute("DELETE FROM users WHERE id = $1", uuid.UUID(alice.id))
    finally:
        await conn.close()

    async def refused():
        response = await client.get(url, headers=key.headers)
        return response.status == 401

    await eventually(refused, within=KEY_TTL + 1.0, what="the deleted user's key refused")


@pytest.mark.parametrize(
    "key",
    [
        "etpk_" + uuid.uuid4().hex + "_" + "A" * 43,
        "etpk_" + uuid.uuid4().hex + "_" + "A" * 42,
        "etpk_garbage",
    ],
    ids=["unknown", "truncated", "malformed"],
)
async def test_a_forged_or_malformed_key_is_401(client, project, key):
    response = await client.get(
        "/api/v1/experiments",
        params={"project_id": project},
        headers={"Authorization": f"Bearer {key}"},
    )

    await assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="etp", error="invalid_token"'
