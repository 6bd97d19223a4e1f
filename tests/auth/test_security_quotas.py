"""Quotas: registration is open, so one account must not be able to create any number of
projects. The count holds under concurrent creates."""

import asyncio

import pytest

from tests.auth.conftest import AuthApi

PROJECTS = "/api/v1/projects"


@pytest.fixture
async def api(service_app_client):
    return AuthApi(await service_app_client("auth", max_owned_projects=3))


def owned(pgsql, user_id: str) -> int:
    cursor = pgsql["auth"].cursor()
    cursor.execute(
        "SELECT count(*) FROM project_members WHERE user_id = %s AND role = 'owner'", (user_id,)
    )
    return cursor.fetchone()[0]


async def test_a_user_owns_at_most_the_quota_of_projects(api, user, pgsql):
    alice, bob = await user("alice"), await user("bob")
    first = None
    for n in range(3):
        created = await api.post(PROJECTS, alice, json={"name": f"p{n}"}, status=201)
        first = first or created

    body = await api.problem("POST", PROJECTS, alice, 409, "project_limit", json={"name": "p3"})

    assert "at most 3 projects" in body["detail"]
    assert owned(pgsql, alice.id) == 3
    await api.post(PROJECTS, bob, json={"name": "bob's"}, status=201)  # the quota is per user
    await api.delete(f"{PROJECTS}/{first['id']}", alice)
    await api.post(PROJECTS, alice, json={"name": "p3"}, status=201)  # room again


async def test_concurrent_creates_stop_at_the_quota(api, user, pgsql):
    alice = await user("alice")

    answers = await asyncio.gather(
        *(api.request("POST", PROJECTS, alice, json={"name": f"p{n}"}) for n in range(8))
    )

    assert sorted(answer.status for answer in answers) == [201] * 3 + [409] * 5
    assert owned(pgsql, alice.id) == 3
