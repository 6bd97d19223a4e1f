import asyncio
import random
import uuid
from datetime import datetime

import pytest

from backend_common.pagination import encode_cursor
from tests.problems import assert_problem

PROJECTS = "/api/v1/projects"
RACE_ROUNDS = 5


def names(items):
    return [item["name"] for item in items]


async def test_create_project_makes_creator_owner(api, user, stored_members):
    alice = await user("alice")

    response = await api.request(
        "POST", PROJECTS, alice, json={"name": "Wind tunnel", "description": "Blade tests"}
    )

    assert response.status == 201, await response.text()
    created = await response.json()
    assert response.headers["Location"] == f"{PROJECTS}/{created['id']}"
    assert created["name"] == "Wind tunnel"
    assert created["description"] == "Blade tests"
    assert created["created_by"] == alice.id
    assert created["role"] == "owner"
    membership = await api.get(f"{PROJECTS}/{created['id']}/membership", alice)
    assert membership == {
        "project_id": created["id"],
        "user_id": alice.id,
        "role": "owner",
        "physical_only": False,
    }
    assert stored_members(created["id"]) == {"alice": "owner"}


async def test_create_project_with_idempotency_key_replays_and_stores_one(api, user, pgsql):
    alice = await user("alice")
    headers = {"Idempotency-Key": "create-wind-tunnel"}

    first, second = [
        await api.request("POST", PROJECTS, alice, json={"name": "Wind tunnel"}, headers=headers)
        for _ in range(2)
    ]
    other_body = await api.request(
        "POST", PROJECTS, alice, json={"name": "Water tank"}, headers=headers
    )

    assert first.status == second.status == 201
    assert await first.json() == await second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Location"] == first.headers["Location"]
    await assert_problem(other_body, 422, "idempotency_key_reused")
    cursor = pgsql["auth"].cursor()
    cursor.execute("SELECT count(*) FROM projects")
    assert cursor.fetchone()[0] == 1


async def test_create_project_without_description_stores_empty_one(api, user):
    alice = await user("alice")

    created = await api.post(PROJECTS, alice, json={"name": "Wind tunnel"}, status=201)

    assert created["description"] == ""


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-name"),
        pytest.param({"name": ""}, id="empty-name"),
        pytest.param({"name": "x" * 201}, id="long-name"),
        pytest.param({"name": "Tank", "description": "x" * 4001}, id="long-description"),
        pytest.param({"name": "Tank", "owner": "bob"}, id="unknown-field"),
    ],
)
async def test_create_project_with_bad_body_is_422(api, user, body):
    alice = await user("alice")

    await api.problem("POST", PROJECTS, alice, 422, "validation_failed", json=body)


async def test_create_project_without_token_is_401(api):
    await api.problem("POST", PROJECTS, None, 401, "unauthorized", json={"name": "Tank"})


async def test_list_projects_shows_only_mine_with_my_role(api, user, project):
    alice, bob = await user("alice"), await user("bob")
    await project(alice, name="Alpha", viewers=[bob])
    await project(bob, name="Bravo")
    await project(alice, name="Charlie", editors=[bob])
    await project(alice, name="Delta")

    page = await api.get(PROJECTS, bob)

    assert [(p["name"], p["role"]) for p in page["items"]] == [
        ("Alpha", "viewer"),
        ("Bravo", "owner"),
        ("Charlie", "editor"),
    ]
    assert page["next_cursor"] is None


async def test_list_projects_of_newcomer_is_empty(api, user, project):
    await project(await user("alice"))

    page = await api.get(PROJECTS, await user("bob"))

    assert page == {"items": [], "next_cursor": None}


async def test_list_projects_q_matches_name_case_insensitively(api, user, project):
    alice = await user("alice")
    for name in ("Wind Tunnel A", "small wind TUNNEL", "Water tank", "100% humidity"):
        await project(alice, name=name)

    tunnels = await api.get(PROJECTS, alice, params={"q": "tunnel"})
    percent = await api.get(PROJECTS, alice, params={"q": "%"})
    nothing = await api.get(PROJECTS, alice, params={"q": "_"})

    assert names(tunnels["items"]) == ["Wind Tunnel A", "small wind TUNNEL"]
    assert names(percent["items"]) == ["100% humidity"]
    assert nothing["items"] == []


async def test_list_projects_walks_pages_in_name_order(api, user, project):
    alice, bob = await user("alice"), await user("bob")
    expected = ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
    for name in random.sample(expected, len(expected)):
        await project(alice, name=name)
    await project(bob, name="Bravo")

    pages = await api.walk(PROJECTS, alice, limit=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    items = [item for page in pages for item in page]
    assert names(items) == expected
    assert len({item["id"] for item in items}) == 5


async def test_list_projects_pages_through_equal_names_by_id(api, user, project):
    alice = await user("alice")
    created = {(await project(alice, name="Same"))["id"] for _ in range(3)}

    pages = await api.walk(PROJECTS, alice, limit=1)

    assert [len(page) for page in pages] == [1, 1, 1]
    assert {page[0]["id"] for page in pages} == created


async def test_list_projects_pages_keep_the_q_filter(api, user, project):
    alice = await user("alice")
    for name in ("Tunnel 1", "Tank", "Tunnel 2", "Tunnel 3", "Tower"):
        await project(alice, name=name)

    pages = await api.walk(PROJECTS, alice, limit=2, q="TUNNEL")

    assert [names(page) for page in pages] == [["Tunnel 1", "Tunnel 2"], ["Tunnel 3"]]


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage!", id="not-base64"),
        pytest.param(encode_cursor({"u": "alice"}), id="user-search-cursor"),
        pytest.param(encode_cursor({"name": "A", "id": "nope"}), id="id-not-uuid"),
        pytest.param("WzEsMl0", id="json-list"),
    ],
)
async def test_list_projects_with_foreign_cursor_is_400(api, user, cursor):
    alice = await user("alice")

    await api.problem("GET", PROJECTS, alice, 400, "invalid_cursor", params={"cursor": cursor})


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten"])
async def test_list_projects_with_limit_out_of_range_is_422(api, user, limit):
    alice = await user("alice")

    body = await api.problem(
        "GET", PROJECTS, alice, 422, "validation_failed", params={"limit": limit}
    )

    assert [error["field"] for error in body["errors"]] == ["limit"]


async def test_get_project_as_member_shows_my_role(api, user, project):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, name="Wind tunnel", description="Blades", viewers=[bob])

    got = await api.get(f"{PROJECTS}/{created['id']}", bob)

    assert got == {**created, "role": "viewer"}


async def test_get_unknown_project_is_404(api, user):
    alice = await user("alice")

    await api.problem("GET", f"{PROJECTS}/{uuid.uuid4()}", alice, 404, "project_not_found")


async def test_get_project_with_malformed_id_is_404(api, user):
    alice = await user("alice")

    await api.problem("GET", f"{PROJECTS}/not-a-uuid", alice, 404, "not_found")


@pytest.mark.parametrize("role", ["owner", "editor"])
async def test_update_project_as_writer_changes_it(api, user, project, stored_project, role):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, name="Wind tunnel", description="Old", editors=[bob])
    caller = alice if role == "owner" else bob

    updated = await api.patch(f"{PROJECTS}/{created['id']}", caller, json={"name": "Tunnel 2"})

    assert updated["name"] == "Tunnel 2"
    assert updated["description"] == "Old"
    assert updated["role"] == role
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )
    assert stored_project(created["id"]) == {"name": "Tunnel 2", "description": "Old"}


async def test_update_project_description_only_keeps_name(api, user, project, stored_project):
    alice = await user("alice")
    created = await project(alice, name="Wind tunnel", description="Old")

    await api.patch(f"{PROJECTS}/{created['id']}", alice, json={"description": ""})

    assert stored_project(created["id"]) == {"name": "Wind tunnel", "description": ""}


async def test_update_project_as_viewer_is_403(api, user, project, stored_project):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, name="Wind tunnel", viewers=[bob])

    await api.problem(
        "PATCH", f"{PROJECTS}/{created['id']}", bob, 403, "forbidden", json={"name": "Mine"}
    )

    assert stored_project(created["id"])["name"] == "Wind tunnel"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param({"name": None, "description": None}, id="all-null"),
        pytest.param({"name": ""}, id="empty-name"),
        pytest.param({"name": "Tank", "created_by": None}, id="unknown-field"),
        pytest.param({"physical_only": "yes"}, id="policy-not-boolean"),
        pytest.param({"physical_only": None}, id="policy-null"),
    ],
)
async def test_update_project_with_bad_patch_is_422(api, user, project, stored_project, body):
    alice = await user("alice")
    created = await project(alice, name="Wind tunnel")

    await api.problem(
        "PATCH", f"{PROJECTS}/{created['id']}", alice, 422, "validation_failed", json=body
    )

    assert stored_project(created["id"])["name"] == "Wind tunnel"


def stored_policy(pgsql, project_id: str) -> bool:
    cursor = pgsql["auth"].cursor()
    cursor.execute("SELECT physical_only FROM projects WHERE id = %s", (project_id,))
    return cursor.fetchone()[0]


async def test_create_project_with_physical_only_policy_tells_members(api, user, project, pgsql):
    alice, bob = await user("alice"), await user("bob")

    created = await api.post(
        PROJECTS, alice, status=201, json={"name": "Tank", "physical_only": True}
    )
    await api.post(
        f"{PROJECTS}/{created['id']}/members",
        alice,
        status=201,
        json={"user_id": bob.id, "role": "viewer"},
    )

    assert created["physical_only"] is True
    assert stored_policy(pgsql, created["id"]) is True
    membership = await api.get(f"{PROJECTS}/{created['id']}/membership", bob)
    assert membership["role"] == "viewer"
    assert membership["physical_only"] is True
    assert (await api.get(PROJECTS, bob))["items"][0]["physical_only"] is True


async def test_owner_sets_and_clears_the_raw_value_policy(api, user, project, pgsql):
    alice = await user("alice")
    created = await project(alice)
    path = f"{PROJECTS}/{created['id']}"

    assert created["physical_only"] is False
    updated = await api.patch(path, alice, json={"physical_only": True})
    assert updated["physical_only"] is True
    assert stored_policy(pgsql, created["id"]) is True
    assert (await api.get(f"{path}/membership", alice))["physical_only"] is True

    await api.patch(path, alice, json={"physical_only": False})
    assert stored_policy(pgsql, created["id"]) is False


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_raw_value_policy_by_non_owner_is_403(api, user, project, pgsql, role):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, name="Wind tunnel", **{f"{role}s": [bob]})

    await api.problem(
        "PATCH",
        f"{PROJECTS}/{created['id']}",
        bob,
        403,
        "forbidden",
        json={"name": "Tunnel 2", "physical_only": True},
    )

    assert stored_policy(pgsql, created["id"]) is False
    assert (await api.get(f"{PROJECTS}/{created['id']}", alice))["name"] == "Wind tunnel"


async def test_delete_project_as_owner_removes_it_and_its_members(
    api, user, project, stored_project, stored_members
):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, editors=[bob])
    path = f"{PROJECTS}/{created['id']}"

    await api.delete(path, alice)

    await api.problem("GET", path, alice, 404, "project_not_found")
    await api.problem("DELETE", path, alice, 404, "project_not_found")
    assert stored_project(created["id"]) is None
    assert stored_members(created["id"]) == {}
    assert (await api.get(PROJECTS, bob))["items"] == []


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_delete_project_as_non_owner_is_403(
    api, user, project, stored_project, stored_members, role
):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, **{f"{role}s": [bob]})

    await api.problem("DELETE", f"{PROJECTS}/{created['id']}", bob, 403, "forbidden")

    assert stored_project(created["id"]) is not None
    assert stored_members(created["id"]) == {"alice": "owner", "bob": role}


@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
async def test_membership_of_member_gives_role(api, user, project, role):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, **{f"{role}s": [bob]})

    membership = await api.get(f"{PROJECTS}/{created['id']}/membership", bob)

    assert membership == {
        "project_id": created["id"],
        "user_id": bob.id,
        "role": role,
        "physical_only": False,
    }


async def test_membership_of_non_member_is_404(api, user, project):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice)

    await api.problem(
        "GET", f"{PROJECTS}/{created['id']}/membership", bob, 404, "project_not_found"
    )


async def test_membership_of_unknown_project_is_404(api, user):
    alice = await user("alice")

    await api.problem(
        "GET", f"{PROJECTS}/{uuid.uuid4()}/membership", alice, 404, "project_not_found"
    )


@pytest.mark.parametrize(
    "project_id", ["not-a-uuid", "1234", "00000000-0000-0000-0000-00000000000g"]
)
async def test_membership_with_malformed_id_is_404(api, user, project_id):
    alice = await user("alice")

    await api.problem("GET", f"{PROJECTS}/{project_id}/membership", alice, 404, "not_found")


async def test_membership_follows_role_changes_and_removal(api, user, project):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, viewers=[bob])
    path = f"{PROJECTS}/{created['id']}"

    await api.patch(f"{path}/members/{bob.id}", alice, json={"role": "editor"})
    assert (await api.get(f"{path}/membership", bob))["role"] == "editor"
    await api.delete(f"{path}/members/{bob.id}", alice)

    await api.problem("GET", f"{path}/membership", bob, 404, "project_not_found")


async def test_membership_without_token_is_401(api, user, project):
    created = await project(await user("alice"))

    response = await api.request("GET", f"{PROJECTS}/{created['id']}/membership", None)

    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        pytest.param("POST", "", {"json": {"name": "Wind\x00tunnel"}}, id="create-name"),
        pytest.param("PATCH", "/{id}", {"json": {"description": "a\x00"}}, id="update"),
        pytest.param("GET", "", {"params": {"q": "tunnel\x00"}}, id="list-q"),
    ],
)
async def test_nul_character_in_input_is_422(
    api, user, project, stored_project, method, path, kwargs
):
    alice = await user("alice")
    created = await project(alice, name="Wind tunnel")

    await api.problem(
        method, PROJECTS + path.format(id=created["id"]), alice, 422, "validation_failed", **kwargs
    )

    assert stored_project(created["id"]) == {"name": "Wind tunnel", "description": ""}


async def test_list_projects_with_forged_nul_cursor_is_400(api, user):
    alice = await user("alice")
    cursor = encode_cursor({"name": "Wind\x00", "id": str(uuid.uuid4())})

    await api.problem("GET", PROJECTS, alice, 400, "invalid_cursor", params={"cursor": cursor})


async def test_update_while_owner_deletes_is_200_or_404(api, user, project, stored_project):
    alice, bob = await user("alice"), await user("bob")
    for _ in range(RACE_ROUNDS):
        created = await project(alice, editors=[bob])
        path = f"{PROJECTS}/{created['id']}"

        deleted, updated = await asyncio.gather(
            api.request("DELETE", path, alice),
            api.request("PATCH", path, bob, json={"name": "Renamed"}),
        )

        assert deleted.status == 204, await deleted.text()
        if updated.status != 200:
            await assert_problem(updated, 404, "project_not_found")
        assert stored_project(created["id"]) is None
