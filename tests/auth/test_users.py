import pytest

from backend_common.pagination import encode_cursor

USERS = "/api/v1/users"


def usernames(items):
    return [item["username"] for item in items]


async def test_search_users_without_token_is_401(api, user):
    await user("alice")

    response = await api.request("GET", USERS, None, params={"q": "ali"})

    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_search_users_matches_prefix_case_insensitively(api, user, project):
    alice = await user("alice")
    alicia = await user("Alicia")
    others = [await user(name) for name in ("bob", "malice", "al.ex")]
    await project(alice, viewers=[alicia, *others])

    found = await api.get(USERS, alice, params={"q": "ALI"})

    assert found == {
        "items": [{"id": alice.id, "username": "alice"}, {"id": alicia.id, "username": "Alicia"}],
        "next_cursor": None,
    }


async def test_search_users_shows_no_email(api, user):
    alice = await user("alice", email="secret.alice@example.org")

    found = await api.get(USERS, alice, params={"q": "a"})

    assert [set(item) for item in found["items"]] == [{"id", "username"}]
    assert "secret" not in str(found)


async def test_search_users_walks_pages_in_username_order(api, user, project):
    caller = await user("zed")
    expected = ["sam", "Sandra", "sara", "Sasha", "seth"]
    others = [await user(name) for name in ("sara", "seth", "Sasha", "sam", "Sandra", "tom")]
    await project(caller, editors=others)

    pages = await api.walk(USERS, caller, q="s", limit=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert usernames(item for page in pages for item in page) == expected


async def test_search_users_by_a_stranger_does_not_find_users_sharing_no_project(
    api, user, project
):
    alice = await user("alice")
    alicia = await user("alicia")
    await project(alice, viewers=[alicia])
    stranger = await user("mallory")

    found = await api.get(USERS, stranger, params={"q": "a"})

    assert found == {"items": [], "next_cursor": None}


async def test_search_users_finds_members_of_the_callers_projects_only(api, user, project):
    alice = await user("alice")
    colleague, outsider = await user("bea"), await user("ben")
    await project(alice, editors=[colleague])
    await project(outsider, name="Elsewhere")

    found = await api.get(USERS, alice, params={"q": "b"})

    assert usernames(found["items"]) == ["bea"]


async def test_search_users_by_exact_username_finds_anyone(api, user):
    alice = await user("alice")
    await user("Bartholomew")
    await user("Bart")

    found = await api.get(USERS, alice, params={"q": "BARTHOLOMEW"})

    assert usernames(found["items"]) == ["Bartholomew"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        pytest.param("ab_", ["ab_c"], id="underscore"),
        pytest.param("a%", [], id="percent"),
        pytest.param("%", [], id="percent-alone"),
        pytest.param("_", [], id="underscore-alone"),
        pytest.param("ab\\", [], id="backslash"),
        pytest.param("ab.", ["ab.d"], id="dot"),
    ],
)
async def test_search_users_takes_like_wildcards_literally(api, user, project, q, expected):
    caller = await user("ab_c")
    others = [await user(name) for name in ("abxc", "ab.d", "abcd")]
    await project(caller, viewers=others)

    found = await api.get(USERS, caller, params={"q": q})

    assert usernames(found["items"]) == expected


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="missing"),
        pytest.param({"q": ""}, id="empty"),
        pytest.param({"q": "a" * 33}, id="too-long"),
        pytest.param({"q": "a", "limit": "0"}, id="limit-0"),
        pytest.param({"q": "a", "limit": "501"}, id="limit-501"),
        pytest.param({"q": "a", "email": "x"}, id="unknown-param"),
        pytest.param({"q": "a\x00"}, id="nul"),
    ],
)
async def test_search_users_with_bad_query_is_422(api, user, params):
    alice = await user("alice")

    await api.problem("GET", USERS, alice, 422, "validation_failed", params=params)


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("%%%", id="garbage"),
        pytest.param(encode_cursor({"name": "alice", "id": "x"}), id="projects-cursor"),
        pytest.param(encode_cursor({"u": "alice\x00"}), id="forged-nul"),
    ],
)
async def test_search_users_with_foreign_cursor_is_400(api, user, cursor):
    alice = await user("alice")

    await api.problem(
        "GET", USERS, alice, 400, "invalid_cursor", params={"q": "a", "cursor": cursor}
    )
