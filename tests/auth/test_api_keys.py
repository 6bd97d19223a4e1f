"""API keys: created (the secret shown once, only its digest stored), listed, revoked; the
quota per user; `last_used_at`; bad input on every route."""

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.auth.accounts_api import via
from tests.auth.api_key_kit import KEY_PATTERN, KEYS, as_key, bearer, create_key, sha256
from tests.auth.conftest import AuthApi

ME = "/api/v1/auth/me"


def _stored(pgsql, key_id: str) -> dict | None:
    cursor = pgsql["auth"].cursor()
    cursor.execute(
        "SELECT user_id, name, key_hash, preview, project_id, role, expires_at, last_used_at,"
        " revoked_at FROM api_keys WHERE id = %s",
        (key_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    names = [column.name for column in cursor.description]
    return dict(zip(names, row, strict=True))


def _soon(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def test_create_shows_the_key_once_and_stores_only_its_digest(api, user, pgsql):
    alice = await user("alice")
    expires_at = _soon(days=30)

    response = await api.request("POST", KEYS, alice, json={"name": "ci", "expires_at": expires_at})

    assert response.status == 201, await response.text()
    created = await response.json()
    assert set(created) == {
        "id",
        "name",
        "key",
        "preview",
        "project_id",
        "role",
        "expires_at",
        "created_at",
    }
    assert re.fullmatch(KEY_PATTERN, created["key"]), created["key"]
    assert created["key"].startswith(f"etpk_{uuid.UUID(created['id']).hex}_")
    assert created["preview"] == "etpk_…" + created["key"][-4:]
    assert created["name"] == "ci"
    assert (created["project_id"], created["role"]) == (None, None)
    assert datetime.fromisoformat(created["expires_at"]) == datetime.fromisoformat(expires_at)
    assert response.headers["Location"] == f"{KEYS}/{created['id']}"
    assert response.headers["Cache-Control"] == "no-store"
    stored = _stored(pgsql, created["id"])
    assert stored["key_hash"].tobytes() == sha256(created["key"])
    assert str(stored["user_id"]) == alice.id
    # Neither the key nor its secret is anywhere in the row (the preview shows 4 characters).
    secret = created["key"].split("_", 2)[2]  # the secret itself may contain "_"
    row = [
        value.tobytes() if isinstance(value, memoryview) else str(value)
        for value in stored.values()
    ]
    assert not any(
        secret in value if isinstance(value, str) else secret.encode() in value for value in row
    )


async def test_the_key_acts_as_its_user(api, user):
    alice = await user("alice")
    created = await create_key(api, alice)

    me = await api.get(ME, as_key(alice, created["key"]))

    assert (me["id"], me["username"]) == (alice.id, "alice")


async def test_list_shows_previews_and_last_use_never_the_secret(api, user):
    alice, bob = await user("alice"), await user("bob")
    first = await create_key(api, alice, name="laptop")
    second = await create_key(api, alice, name="ci")
    await create_key(api, bob, name="bob's")

    listed = await api.get(KEYS, alice)

    assert [key["name"] for key in listed["items"]] == ["ci", "laptop"]  # newest first
    assert listed["next_cursor"] is None
    for key, created in zip(listed["items"], [second, first], strict=True):
        assert set(key) == {
            "id",
            "name",
            "preview",
            "project_id",
            "role",
            "expires_at",
            "created_at",
            "last_used_at",
        }
        assert key["id"] == created["id"]
        assert key["preview"] == created["preview"]
        assert key["last_used_at"] is None
        assert created["key"] not in str(listed)


async def test_list_pages_with_cursors(api, user):
    alice = await user("alice")
    ids = [(await create_key(api, alice, name=f"k{n}"))["id"] for n in range(5)]

    pages = await api.walk(KEYS, alice, limit=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [key["id"] for page in pages for key in page] == ids[::-1]


async def test_last_used_at_is_written_once_per_interval(service_app_client, user, pgsql):
    api = AuthApi(await service_app_client("auth", api_key_last_used_interval=3600))
    alice = await user("alice")
    created = await create_key(api, alice)
    before = datetime.now(UTC)

    await api.get(ME, as_key(alice, created["key"]))
    first_use = _stored(pgsql, created["id"])["last_used_at"]
    await api.get(ME, as_key(alice, created["key"]))

    assert first_use is not None
    assert first_use >= before - timedelta(seconds=1)
    assert _stored(pgsql, created["id"])["last_used_at"] == first_use
    listed = await api.get(KEYS, alice)
    assert datetime.fromisoformat(listed["items"][0]["last_used_at"]) == first_use


async def test_last_used_at_moves_on_after_the_interval(service_app_client, user, pgsql):
    api = AuthApi(await service_app_client("auth", api_key_last_used_interval=0))
    alice = await user("alice")
    created = await create_key(api, alice)
    await api.get(ME, as_key(alice, created["key"]))
    first_use = _stored(pgsql, created["id"])["last_used_at"]
    await asyncio.sleep(0.01)

    await api.get(ME, as_key(alice, created["key"]))

    assert _stored(pgsql, created["id"])["last_used_at"] > first_use


async def test_revoke_stops_the_key_and_hides_it(api, user, pgsql):
    alice = await user("alice")
    kept = await create_key(api, alice, name="kept")
    revoked = await create_key(api, alice, name="revoked")

    await api.delete(f"{KEYS}/{revoked['id']}", alice)

    assert [key["id"] for key in (await api.get(KEYS, alice))["items"]] == [kept["id"]]
    assert _stored(pgsql, revoked["id"])["revoked_at"] is not None
    response = await api.problem("GET", ME, as_key(alice, revoked["key"]), 401, "unauthorized")
    assert response["detail"] == "Invalid API key: it is unknown or was revoked."
    await api.get(ME, as_key(alice, kept["key"]))
    await api.problem("DELETE", f"{KEYS}/{revoked['id']}", alice, 404, "api_key_not_found")


async def test_revoking_another_users_key_is_404_and_leaves_it(api, user):
    alice, bob = await user("alice"), await user("bob")
    bobs = await create_key(api, bob)

    await api.problem("DELETE", f"{KEYS}/{bobs['id']}", alice, 404, "api_key_not_found")
    await api.problem("DELETE", f"{KEYS}/{uuid.uuid4()}", alice, 404, "api_key_not_found")
    await api.problem("DELETE", f"{KEYS}/not-a-uuid", alice, 404, "not_found")

    await api.get(ME, as_key(bob, bobs["key"]))


async def test_idempotent_create_replays_without_the_secret(api, user, pgsql):
    alice = await user("alice")
    headers = {"Idempotency-Key": "ci-key-1"}

    first = await api.request("POST", KEYS, alice, json={"name": "ci"}, headers=headers)
    again = await api.request("POST", KEYS, alice, json={"name": "ci"}, headers=headers)

    assert (first.status, again.status) == (201, 201)
    created, replayed = await first.json(), await again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert replayed == {**created, "key": None}
    assert len((await api.get(KEYS, alice))["items"]) == 1
    await api.problem(
        "POST", KEYS, alice, 422, "idempotency_key_reused", json={"name": "other"}, headers=headers
    )


async def test_a_user_has_at_most_the_quota_of_live_keys(service_app_client, user, pgsql):
    api = AuthApi(await service_app_client("auth", max_api_keys_per_user=2))
    alice, bob = await user("alice"), await user("bob")
    first = await create_key(api, alice)
    await create_key(api, alice)

    body = await api.problem("POST", KEYS, alice, 409, "api_key_limit", json={"name": "third"})

    assert "at most 2" in body["detail"]
    await create_key(api, bob)  # per user
    await api.delete(f"{KEYS}/{first['id']}", alice)
    await create_key(api, alice)  # a revoked key frees its place


async def test_concurrent_creates_stop_at_the_quota(service_app_client, user, pgsql):
    api = AuthApi(await service_app_client("auth", max_api_keys_per_user=3))
    alice = await user("alice")

    answers = await asyncio.gather(
        *(api.request("POST", KEYS, alice, json={"name": f"k{n}"}) for n in range(8))
    )

    assert sorted(answer.status for answer in answers) == [201] * 3 + [409] * 5
    cursor = pgsql["auth"].cursor()
    cursor.execute("SELECT count(*) FROM api_keys WHERE user_id = %s", (alice.id,))
    assert cursor.fetchone()[0] == 3


BAD_BODIES = {
    "no-name": {},
    "empty-name": {"name": ""},
    "long-name": {"name": "x" * 101},
    "name-not-a-string": {"name": 7},
    "unknown-field": {"name": "ci", "scopes": ["all"]},
    "expired": {"name": "ci", "expires_at": _soon(seconds=-1)},
    "naive-expiry": {"name": "ci", "expires_at": "2099-01-01T00:00:00"},
    "expiry-not-a-date": {"name": "ci", "expires_at": "tomorrow"},
    "expiry-a-number": {"name": "ci", "expires_at": 4102444800},
    "project-not-a-uuid": {"name": "ci", "project_id": "wind-tunnel"},
    "owner-cap": {"name": "ci", "role": "owner"},
    "unknown-role": {"name": "ci", "role": "admin"},
    "role-not-a-string": {"name": "ci", "role": 1},
    "a-list": [{"name": "ci"}],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_create_with_bad_body_is_422_and_creates_nothing(api, user, pgsql, body):
    alice = await user("alice")

    await api.problem("POST", KEYS, alice, 422, "validation_failed", json=body)

    assert (await api.get(KEYS, alice))["items"] == []


async def test_create_with_expiry_in_the_past_names_the_field(api, user):
    alice = await user("alice")

    problem = await api.problem(
        "POST", KEYS, alice, 422, "validation_failed", json={"name": "ci", "expires_at": _soon()}
    )

    assert [error["field"] for error in problem["errors"]] == ["expires_at"], problem


async def test_create_with_malformed_json_is_400(api, user):
    alice = await user("alice")
    headers = {"Content-Type": "application/json"}

    await api.problem(
        "POST", KEYS, alice, 400, "malformed_json", data=b'{"name": ', headers=headers
    )


async def test_create_with_huge_body_is_413(api, user):
    alice = await user("alice")

    await api.problem(
        "POST", KEYS, alice, 413, "payload_too_large", json={"name": "x" * (1024 * 1024)}
    )


async def test_create_with_another_media_type_is_415(api, user):
    alice = await user("alice")

    await api.problem("POST", KEYS, alice, 415, "unsupported_media_type", data=b"name=ci")


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 501}, {"limit": "many"}, {"sort": "name"}],
    ids=["limit-0", "limit-501", "limit-text", "unknown-param"],
)
async def test_list_with_bad_query_is_422(api, user, params):
    alice = await user("alice")

    await api.problem("GET", KEYS, alice, 422, "validation_failed", params=params)


async def test_list_with_forged_cursor_is_400(api, user):
    alice = await user("alice")

    await api.problem("GET", KEYS, alice, 400, "invalid_cursor", params={"cursor": "e30"})


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", KEYS), ("GET", KEYS), ("DELETE", f"{KEYS}/{uuid.uuid4()}")],
    ids=["create", "list", "revoke"],
)
async def test_key_routes_without_a_token_are_401(api, method, path):
    response = await api.request(method, path, None, json={"name": "ci"})

    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="etp"'


async def test_a_forwarded_client_creates_keys_like_any_other(api, user):
    """The refusal allowance counts refused keys only: creating and using keys spends none."""
    alice = await user("alice")
    created = await create_key(api, alice)

    for _ in range(40):
        await api.get(ME, None, headers={**bearer(created["key"]), **via("203.0.113.9")})
