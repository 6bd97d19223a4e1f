import asyncio
import uuid

import pytest

from tests.problems import assert_problem

RACE_ROUNDS = 5


def members_path(project):
    return f"/api/v1/projects/{project['id']}/members"


async def test_list_members_walks_pages_in_the_order_added(api, user, project):
    alice, bob, carol, dave, erin = [
        await user(name) for name in ("alice", "bob", "carol", "dave", "erin")
    ]
    created = await project(alice, owners=[dave], editors=[bob], viewers=[carol, erin])

    pages = await api.walk(members_path(created), carol, limit=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    items = [item for page in pages for item in page]
    assert [(m["username"], m["role"]) for m in items] == [
        ("alice", "owner"),
        ("dave", "owner"),
        ("bob", "editor"),
        ("carol", "viewer"),
        ("erin", "viewer"),
    ]
    assert {m["project_id"] for m in items} == {created["id"]}
    assert items[0]["user_id"] == alice.id
    assert set(items[0]) == {"project_id", "user_id", "username", "role", "added_at"}


async def test_list_members_with_garbage_cursor_is_400(api, user, project):
    alice = await user("alice")
    created = await project(alice)

    await api.problem(
        "GET", members_path(created), alice, 400, "invalid_cursor", params={"cursor": "nope"}
    )


@pytest.mark.parametrize("by", ["user_id", "username"])
async def test_add_member_by_id_or_name_stores_the_role(api, user, project, stored_members, by):
    alice, bob = await user("alice"), await user("Bob")
    created = await project(alice)
    who = {"user_id": bob.id} if by == "user_id" else {"username": "bOB"}

    response = await api.request(
        "POST", members_path(created), alice, json={**who, "role": "editor"}
    )

    assert response.status == 201, await response.text()
    member = await response.json()
    assert response.headers["Location"] == f"{members_path(created)}/{bob.id}"
    assert member["project_id"] == created["id"]
    assert member["user_id"] == bob.id
    assert member["username"] == "Bob"
    assert member["role"] == "editor"
    assert stored_members(created["id"]) == {"alice": "owner", "Bob": "editor"}
    assert (await api.get(f"/api/v1/projects/{created['id']}", bob))["role"] == "editor"


@pytest.mark.parametrize(
    "who",
    [
        pytest.param({"user_id": str(uuid.uuid4())}, id="unknown-id"),
        pytest.param({"username": "nobody"}, id="unknown-name"),
    ],
)
async def test_add_unknown_user_is_404(api, user, project, stored_members, who):
    alice = await user("alice")
    created = await project(alice)

    await api.problem(
        "POST", members_path(created), alice, 404, "user_not_found", json={**who, "role": "viewer"}
    )

    assert stored_members(created["id"]) == {"alice": "owner"}


async def test_add_member_twice_is_409_and_keeps_first_role(api, user, project, stored_members):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, viewers=[bob])

    await api.problem(
        "POST",
        members_path(created),
        alice,
        409,
        "already_member",
        json={"username": "bob", "role": "owner"},
    )
    await api.problem(
        "POST",
        members_path(created),
        alice,
        409,
        "already_member",
        json={"user_id": alice.id, "role": "viewer"},
    )

    assert stored_members(created["id"]) == {"alice": "owner", "bob": "viewer"}


async def test_add_same_member_at_once_adds_one(api, user, project, stored_members):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice)
    body = {"user_id": bob.id, "role": "viewer"}

    responses = await asyncio.gather(
        *(api.request("POST", members_path(created), alice, json=body) for _ in range(2))
    )

    assert sorted(response.status for response in responses) == [201, 409]
    assert stored_members(created["id"]) == {"alice": "owner", "bob": "viewer"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"role": "viewer"}, id="no-user"),
        pytest.param({"user_id": None, "username": None, "role": "viewer"}, id="null-user"),
        pytest.param({"user_id": "{bob}", "username": "bob", "role": "viewer"}, id="both"),
        pytest.param({"username": "bob"}, id="no-role"),
        pytest.param({"username": "bob", "role": "admin"}, id="bad-role"),
        pytest.param({"username": "bob", "role": "Owner"}, id="role-case"),
        pytest.param({"user_id": "bob", "role": "viewer"}, id="id-not-uuid"),
        pytest.param({"username": "bob", "role": "viewer", "note": "hi"}, id="unknown-field"),
    ],
)
async def test_add_member_with_bad_body_is_422(api, user, project, stored_members, body):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice)
    body = {key: bob.id if value == "{bob}" else value for key, value in body.items()}

    await api.problem("POST", members_path(created), alice, 422, "validation_failed", json=body)

    assert stored_members(created["id"]) == {"alice": "owner"}


async def test_change_role_stores_it(api, user, project, stored_members):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, viewers=[bob])

    member = await api.patch(f"{members_path(created)}/{bob.id}", alice, json={"role": "owner"})

    assert (member["username"], member["role"]) == ("bob", "owner")
    assert stored_members(created["id"]) == {"alice": "owner", "bob": "owner"}


async def test_change_role_of_non_member_is_404(api, user, project):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice)

    for user_id in (bob.id, uuid.uuid4()):
        await api.problem(
            "PATCH",
            f"{members_path(created)}/{user_id}",
            alice,
            404,
            "member_not_found",
            json={"role": "editor"},
        )


@pytest.mark.parametrize("body", [{}, {"role": "admin"}, {"role": "editor", "username": "x"}])
async def test_change_role_with_bad_body_is_422(api, user, project, stored_members, body):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, viewers=[bob])

    await api.problem(
        "PATCH", f"{members_path(created)}/{bob.id}", alice, 422, "validation_failed", json=body
    )

    assert stored_members(created["id"]) == {"alice": "owner", "bob": "viewer"}


async def test_remove_member_takes_away_access(api, user, project, stored_members):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, editors=[bob])

    await api.delete(f"{members_path(created)}/{bob.id}", alice)

    assert stored_members(created["id"]) == {"alice": "owner"}
    await api.problem("GET", f"/api/v1/projects/{created['id']}", bob, 404, "project_not_found")
    assert (await api.get("/api/v1/projects", bob))["items"] == []


async def test_remove_non_member_is_404(api, user, project):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice)

    await api.problem("DELETE", f"{members_path(created)}/{bob.id}", alice, 404, "member_not_found")


async def test_malformed_member_id_is_404(api, user, project):
    alice = await user("alice")
    created = await project(alice)

    await api.problem("DELETE", f"{members_path(created)}/bob", alice, 404, "not_found")


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_last_owner_cannot_be_demoted(api, user, project, stored_members, role):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, editors=[bob])

    await api.problem(
        "PATCH",
        f"{members_path(created)}/{alice.id}",
        alice,
        409,
        "last_owner",
        json={"role": role},
    )

    assert stored_members(created["id"]) == {"alice": "owner", "bob": "editor"}


async def test_last_owner_stays_owner_when_set_to_owner(api, user, project):
    alice = await user("alice")
    created = await project(alice)

    member = await api.patch(f"{members_path(created)}/{alice.id}", alice, json={"role": "owner"})

    assert member["role"] == "owner"


async def test_last_owner_cannot_leave(api, user, project, stored_members):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, editors=[bob])

    await api.problem("DELETE", f"{members_path(created)}/{alice.id}", alice, 409, "last_owner")

    assert stored_members(created["id"]) == {"alice": "owner", "bob": "editor"}


async def test_owner_can_be_demoted_and_removed_once_there_is_a_second(
    api, user, project, stored_members
):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, owners=[bob])

    await api.patch(f"{members_path(created)}/{alice.id}", bob, json={"role": "editor"})
    await api.problem("DELETE", f"{members_path(created)}/{bob.id}", bob, 409, "last_owner")
    await api.patch(f"{members_path(created)}/{alice.id}", bob, json={"role": "owner"})
    await api.delete(f"{members_path(created)}/{alice.id}", bob)

    assert stored_members(created["id"]) == {"bob": "owner"}


async def test_owner_can_leave_while_another_owner_stays(api, user, project, stored_members):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, owners=[bob])

    await api.delete(f"{members_path(created)}/{alice.id}", alice)

    assert stored_members(created["id"]) == {"bob": "owner"}
    await api.problem("GET", f"/api/v1/projects/{created['id']}", alice, 404, "project_not_found")


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_member_can_leave(api, user, project, stored_members, role):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, **{f"{role}s": [bob]})

    await api.delete(f"{members_path(created)}/{bob.id}", bob)

    assert stored_members(created["id"]) == {"alice": "owner"}


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_member_cannot_remove_someone_else(api, user, project, stored_members, role):
    alice, bob, carol = await user("alice"), await user("bob"), await user("carol")
    members = (
        {"editors": [bob], "viewers": [carol]} if role == "editor" else {"viewers": [bob, carol]}
    )
    created = await project(alice, **members)

    await api.problem("DELETE", f"{members_path(created)}/{carol.id}", bob, 403, "forbidden")

    assert stored_members(created["id"])["carol"] == "viewer"


async def test_member_cannot_change_own_role(api, user, project, stored_members):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, editors=[bob])

    await api.problem(
        "PATCH",
        f"{members_path(created)}/{bob.id}",
        bob,
        403,
        "forbidden",
        json={"role": "owner"},
    )

    assert stored_members(created["id"])["bob"] == "editor"


async def test_stranger_cannot_leave_a_project(api, user, project):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice)

    await api.problem("DELETE", f"{members_path(created)}/{bob.id}", bob, 404, "project_not_found")


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    api, user, project, stored_members
):
    alice, bob = await user("alice"), await user("bob")
    for _ in range(RACE_ROUNDS):
        created = await project(alice, owners=[bob])
        path = members_path(created)

        first, second = await asyncio.gather(
            api.request("PATCH", f"{path}/{bob.id}", alice, json={"role": "editor"}),
            api.request("PATCH", f"{path}/{alice.id}", bob, json={"role": "editor"}),
        )

        # The project row lock serialises the two: whoever comes second is no longer an owner.
        statuses = sorted([first.status, second.status])
        assert statuses == [200, 403], [await first.text(), await second.text()]
        loser = first if first.status == 403 else second
        await assert_problem(loser, 403, "forbidden")
        assert sorted(stored_members(created["id"]).values()) == ["editor", "owner"]


async def test_two_owners_stepping_down_at_once_leave_one_owner(api, user, project, stored_members):
    alice, bob = await user("alice"), await user("bob")
    for _ in range(RACE_ROUNDS):
        created = await project(alice, owners=[bob])
        path = members_path(created)

        responses = await asyncio.gather(
            api.request("PATCH", f"{path}/{alice.id}", alice, json={"role": "viewer"}),
            api.request("PATCH", f"{path}/{bob.id}", bob, json={"role": "viewer"}),
        )

        assert sorted(r.status for r in responses) == [200, 409]
        await assert_problem(max(responses, key=lambda r: r.status), 409, "last_owner")
        assert sorted(stored_members(created["id"]).values()) == ["owner", "viewer"]


async def test_two_owners_leaving_at_once_leave_one_owner(api, user, project, stored_members):
    alice, bob = await user("alice"), await user("bob")
    for _ in range(RACE_ROUNDS):
        created = await project(alice, owners=[bob])
        path = members_path(created)

        responses = await asyncio.gather(
            api.request("DELETE", f"{path}/{alice.id}", alice),
            api.request("DELETE", f"{path}/{bob.id}", bob),
        )

        assert sorted(r.status for r in responses) == [204, 409]
        await assert_problem(max(responses, key=lambda r: r.status), 409, "last_owner")
        assert list(stored_members(created["id"]).values()) == ["owner"]


async def test_add_member_while_owner_deletes_is_201_or_404(api, user, project, stored_members):
    alice, bob = await user("alice"), await user("bob")
    for _ in range(RACE_ROUNDS):
        created = await project(alice)

        deleted, added = await asyncio.gather(
            api.request("DELETE", f"/api/v1/projects/{created['id']}", alice),
            api.request(
                "POST", members_path(created), alice, json={"user_id": bob.id, "role": "viewer"}
            ),
        )

        assert deleted.status == 204, await deleted.text()
        if added.status != 201:
            await assert_problem(added, 404, "project_not_found")
        assert stored_members(created["id"]) == {}


async def test_add_member_with_nul_in_username_is_422(api, user, project):
    alice = await user("alice")
    created = await project(alice)

    await api.problem(
        "POST",
        members_path(created),
        alice,
        422,
        "validation_failed",
        json={"username": "bob\x00", "role": "viewer"},
    )
