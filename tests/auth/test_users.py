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


async def test_search_users_matches_prefix_case_insensitively(api, user):
    alice = await user("alice")
    alicia = await user("Alicia")
    for name in ("bob", "malice", "al.ex"):
        await user(name)

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


async def test_search_users_walks_pages_in_username_order(api, user):
    caller = await user("zed")
    expected = ["sam", "Sandra", "sara", "Sasha", "seth"]
    for name in ("sara", "seth", "Sasha", "sam", "Sandra", "tom"):
        await user(name)

    pages = await api.walk(USERS, caller, q="s", limit=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert usernames(item for page in pages for item in page) == expected


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
async def test_search_users_takes_like_wildcards_literally(api, user, q, expected):
    caller = await user("ab_c")
    for name in ("abxc", "ab.d", "abcd"):
        await user(name)

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
