"""Keys the auth service refuses: forged, malformed, expired, revoked, of a deleted user. Each is
a 401 problem with `WWW-Authenticate: Bearer ... error="invalid_token"`, as a refused JWT is; an
address that sends too many refused keys gets them no longer checked (429)."""

import uuid

import pytest

from tests.auth.accounts_api import assert_throttled, via
from tests.auth.api_key_kit import INTROSPECT, as_key, bearer, create_key
from tests.auth.conftest import AuthApi
from tests.problems import assert_problem

ME = "/api/v1/auth/me"
REFUSED = "Invalid API key: it is unknown or was revoked."
MALFORMED = "Invalid API key: it is not an etpk_<id>_<secret> key."


async def _refused(api: AuthApi, key: str, detail: str, **headers: str) -> None:
    response = await api.request("GET", ME, None, headers={**bearer(key), **headers})
    body = await assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="etp", error="invalid_token"'
    assert body["detail"] == detail


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


FORGERIES = {
    "wrong-secret": lambda key: _flip(key, len(key) - 10),
    "wrong-last-char": lambda key: _flip(key, len(key) - 1),
    "unknown-id": lambda key: f"etpk_{uuid.uuid4().hex}{key[37:]}",
    "other-id-same-secret": lambda key: "etpk_" + ("0" if key[5] != "0" else "1") + key[6:],
}
MALFORMED_KEYS = {
    "truncated": lambda key: key[:-1],
    "extended": lambda key: key + "A",
    "prefix-only": lambda key: "etpk_",
    "no-secret": lambda key: key[:38],
    "no-separator": lambda key: key[:37] + key[38:],
    "upper-case-id": lambda key: "etpk_" + key[5:37].upper() + key[37:],
    "id-not-hex": lambda key: "etpk_" + "z" * 32 + key[37:],
    "bad-secret-chars": lambda key: key[:-3] + "+/=",
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_forged_key_is_401_invalid_token(api, user, forge):
    alice = await user("alice")
    created = await create_key(api, alice)

    await _refused(api, forge(created["key"]), REFUSED)
    await api.get(ME, as_key(alice, created["key"]))  # the control


@pytest.mark.parametrize("forge", MALFORMED_KEYS.values(), ids=MALFORMED_KEYS.keys())
async def test_malformed_key_is_401_invalid_token(api, user, forge):
    alice = await user("alice")
    created = await create_key(api, alice)

    await _refused(api, forge(created["key"]), MALFORMED)


async def test_expired_key_is_401(api, user, auth_db):
    alice = await user("alice")
    created = await create_key(api, alice, expires_at="2099-01-01T00:00:00Z")
    await api.get(ME, as_key(alice, created["key"]))

    await auth_db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(created["id"]),
    )

    await _refused(api, created["key"], "Invalid API key: it has expired.")
    listed = await api.get("/api/v1/api-keys", alice)
    assert [key["id"] for key in listed["items"]] == [created["id"]]  # still listed, expired


async def test_key_of_a_deleted_user_is_401(api, user, auth_db):
    """No route deletes users yet; an operator deleting the row takes the user's keys along."""
    alice = await user("alice")
    created = await create_key(api, alice)

    await auth_db.execute("DELETE FROM users WHERE id = $1", uuid.UUID(alice.id))

    await _refused(api, created["key"], REFUSED)
    assert await auth_db.fetchval("SELECT count(*) FROM api_keys") == 0


async def test_key_bound_to_a_deleted_project_goes_with_it(api, user, project, auth_db):
    alice = await user("alice")
    bound = await create_key(api, alice, project_id=(await project(alice))["id"])

    await api.delete(f"/api/v1/projects/{bound['project_id']}", alice)

    await _refused(api, bound["key"], REFUSED)


async def test_introspection_refuses_like_every_route(api, user):
    alice = await user("alice")
    created = await create_key(api, alice)

    response = await api.request("GET", INTROSPECT, None, headers=bearer(created["key"][:-1]))

    await assert_problem(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_too_many_refused_keys_from_one_address_are_no_longer_checked(
    service_app_client, user
):
    api = AuthApi(
        await service_app_client("auth", api_key_failure_burst=3, api_key_failure_rate=0.01)
    )
    alice = await user("alice")
    created = await create_key(api, alice)
    guesser, other = via("203.0.113.7"), via("198.51.100.4")

    for _ in range(3):
        await _refused(api, _flip(created["key"], 50), REFUSED, **guesser)
    # Past the allowance even the right key is not checked from there...
    await assert_throttled(
        await api.request("GET", ME, None, headers={**bearer(created["key"]), **guesser})
    )
    await assert_throttled(
        await api.request("GET", INTROSPECT, None, headers={**bearer("etpk_x"), **guesser})
    )
    # ...while other addresses, and the key's user signed in, go on.
    await api.get(ME, None, headers={**bearer(created["key"]), **other})
    await api.get(ME, alice, headers=guesser)
