"""What a key may do in the auth service: a key bound to a project reaches nothing else (other
projects are 404 to it, as to a non-member; lists show its project only), a role cap is never
exceeded, and keys cannot manage keys nor the password."""

import uuid

import pytest

from tests.auth.api_key_kit import INTROSPECT, KEYS, as_key, create_key, key_caller

PROJECTS = "/api/v1/projects"
ME = "/api/v1/auth/me"


@pytest.fixture
async def two_projects(user, project):
    """alice owns `mine` and is an editor of `theirs` (owned by bob)."""
    alice, bob = await user("alice"), await user("bob")
    mine = await project(alice, name="Mine")
    theirs = await project(bob, name="Theirs", editors=[alice])
    return alice, bob, mine, theirs


async def test_a_bound_key_sees_only_its_project(api, two_projects):
    alice, _, mine, theirs = two_projects
    key = await key_caller(api, alice, project_id=mine["id"])

    listed = await api.get(PROJECTS, key)
    me = await api.get(ME, key)

    assert [p["id"] for p in listed["items"]] == [mine["id"]]
    assert [p["id"] for p in me["projects"]] == [mine["id"]]
    await api.get(f"{PROJECTS}/{mine['id']}", key)
    await api.problem("GET", f"{PROJECTS}/{theirs['id']}", key, 404, "project_not_found")
    await api.problem("GET", f"{PROJECTS}/{theirs['id']}/membership", key, 404, "project_not_found")
    await api.problem("GET", f"{PROJECTS}/{theirs['id']}/members", key, 404, "project_not_found")
    await api.problem(
        "PATCH", f"{PROJECTS}/{theirs['id']}", key, 404, "project_not_found", json={"name": "x"}
    )
    # The same user with a password sign-in still reaches both.
    assert len((await api.get(PROJECTS, alice))["items"]) == 2


async def test_membership_through_a_capped_key_is_the_capped_role(api, two_projects):
    alice, _, mine, theirs = two_projects
    viewer_key = await key_caller(api, alice, role="viewer")
    editor_key = await key_caller(api, alice, role="editor")

    answers = {
        (name, project["name"]): (await api.get(f"{PROJECTS}/{project['id']}/membership", caller))[
            "role"
        ]
        for name, caller in (("viewer", viewer_key), ("editor", editor_key), ("none", alice))
        for project in (mine, theirs)
    }

    assert answers == {
        ("viewer", "Mine"): "viewer",
        ("viewer", "Theirs"): "viewer",
        ("editor", "Mine"): "editor",
        ("editor", "Theirs"): "editor",
        ("none", "Mine"): "owner",
        ("none", "Theirs"): "editor",
    }
    listed = await api.get(PROJECTS, viewer_key)
    assert {p["name"]: p["role"] for p in listed["items"]} == {"Mine": "viewer", "Theirs": "viewer"}


async def test_a_capped_key_cannot_do_what_its_cap_does_not_allow(api, two_projects, user):
    alice, _, mine, _ = two_projects
    carol = await user("carol")
    editor_key = await key_caller(api, alice, project_id=mine["id"], role="editor")

    await api.patch(f"{PROJECTS}/{mine['id']}", editor_key, json={"name": "Renamed"})
    await api.problem(
        "POST",
        f"{PROJECTS}/{mine['id']}/members",
        editor_key,
        403,
        "forbidden",
        json={"user_id": carol.id, "role": "viewer"},
    )
    await api.problem("DELETE", f"{PROJECTS}/{mine['id']}", editor_key, 403, "forbidden")
    assert (await api.get(f"{PROJECTS}/{mine['id']}", alice))["name"] == "Renamed"


async def test_a_key_acts_with_the_lesser_of_cap_and_current_role(api, two_projects):
    alice, bob, _, theirs = two_projects
    key = await key_caller(api, alice, project_id=theirs["id"], role="editor")
    await api.patch(f"{PROJECTS}/{theirs['id']}/members/{alice.id}", bob, json={"role": "viewer"})

    membership = await api.get(f"{PROJECTS}/{theirs['id']}/membership", key)

    assert membership["role"] == "viewer"
    await api.delete(f"{PROJECTS}/{theirs['id']}/members/{alice.id}", bob)
    await api.problem("GET", f"{PROJECTS}/{theirs['id']}/membership", key, 404, "project_not_found")


@pytest.mark.parametrize(
    ("bound", "role"),
    [(True, None), (False, "editor"), (True, "viewer")],
    ids=["bound", "capped", "both"],
)
async def test_a_bound_or_capped_key_cannot_create_projects(api, two_projects, bound, role):
    alice, _, mine, _ = two_projects
    scope = {"project_id": mine["id"]} if bound else {}
    key = await key_caller(api, alice, **scope, **({"role": role} if role else {}))

    await api.problem("POST", PROJECTS, key, 403, "api_key_not_allowed", json={"name": "New"})

    assert len((await api.get(PROJECTS, alice))["items"]) == 2


async def test_an_unscoped_key_creates_projects_as_its_user(api, user):
    alice = await user("alice")
    key = await key_caller(api, alice)

    created = await api.post(PROJECTS, key, json={"name": "From CI"}, status=201)

    assert created["role"] == "owner"
    assert created["created_by"] == alice.id


async def test_binding_needs_membership_and_the_cap_at_most_the_role(api, two_projects, user):
    alice, bob, mine, theirs = two_projects
    carol = await user("carol")
    viewer_project = (await api.post(PROJECTS, bob, json={"name": "Read only"}, status=201))["id"]
    await api.post(
        f"{PROJECTS}/{viewer_project}/members",
        bob,
        json={"user_id": alice.id, "role": "viewer"},
        status=201,
    )

    for project_id in (str(uuid.uuid4()), mine["id"]):
        await api.problem(
            "POST",
            KEYS,
            carol,
            404,
            "project_not_found",
            json={"name": "x", "project_id": project_id},
        )
    body = await api.problem(
        "POST",
        KEYS,
        alice,
        403,
        "role_cap_too_high",
        json={"name": "x", "project_id": viewer_project, "role": "editor"},
    )
    assert "viewer" in body["detail"]
    created = await create_key(api, alice, project_id=viewer_project, role="viewer")
    assert (created["project_id"], created["role"]) == (viewer_project, "viewer")
    bound = await create_key(api, alice, project_id=theirs["id"])
    assert (bound["project_id"], bound["role"]) == (theirs["id"], None)
    assert (await api.get(KEYS, carol))["items"] == []


async def test_a_key_cannot_create_or_list_keys(api, user):
    alice = await user("alice")
    key = await key_caller(api, alice)

    await api.problem("POST", KEYS, key, 403, "api_key_not_allowed", json={"name": "child"})
    await api.problem("GET", KEYS, key, 403, "api_key_not_allowed")

    assert len((await api.get(KEYS, alice))["items"]) == 1


async def test_a_key_may_revoke_itself_and_no_other(api, user):
    alice = await user("alice")
    first, second = await create_key(api, alice), await create_key(api, alice)
    first_caller = as_key(alice, first["key"])

    await api.problem("DELETE", f"{KEYS}/{second['id']}", first_caller, 403, "api_key_not_allowed")
    await api.delete(f"{KEYS}/{first['id']}", first_caller)

    await api.problem("GET", ME, first_caller, 401, "unauthorized")
    assert [k["id"] for k in (await api.get(KEYS, alice))["items"]] == [second["id"]]


async def test_a_key_cannot_change_the_password(api, user, accounts):
    alice = await user("alice")
    key = await key_caller(api, alice)

    await api.problem(
        "POST",
        "/api/v1/auth/password",
        key,
        403,
        "api_key_not_allowed",
        json={"old_password": "correct horse battery", "new_password": "a new password here"},
    )

    await accounts.login("alice", "correct horse battery")


async def test_user_search_through_a_bound_key_sees_only_that_projects_members(api, user, project):
    alice, bob, carol = await user("alice"), await user("bobby"), await user("bobcat")
    first = await project(alice, name="First", viewers=[bob])
    await project(alice, name="Second", viewers=[carol])
    key = await key_caller(api, alice, project_id=first["id"])

    found = await api.get("/api/v1/users", key, params={"q": "bob"})

    assert [u["username"] for u in found["items"]] == ["bobby"]
    assert len((await api.get("/api/v1/users", alice, params={"q": "bob"}))["items"]) == 2


async def test_introspection_tells_what_the_key_grants(api, two_projects):
    alice, _, mine, _ = two_projects
    created = await create_key(
        api, alice, project_id=mine["id"], role="viewer", expires_at="2099-01-01T00:00:00Z"
    )

    grant = await api.get(INTROSPECT, as_key(alice, created["key"]))

    assert grant == {
        "id": created["id"],
        "user_id": alice.id,
        "project_id": mine["id"],
        "role": "viewer",
        "expires_at": "2099-01-01T00:00:00Z",
    }
    await api.problem("GET", INTROSPECT, alice, 404, "api_key_not_found")
