"""API keys in the services other than auth: verified by asking the auth service (a fake one
here, a real HTTP server), answers kept for the TTL, malformed keys refused without asking; the
caller's roles go no further than the key's scope, whatever the role source answers."""

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from backend_common import api_keys
from backend_common.api_keys import EXPIRED, MALFORMED, REFUSED, AuthServiceKeys, KeyScope
from backend_common.app import create_base_app
from backend_common.auth import CALLER, InvalidToken, auth_middleware
from backend_common.errors import ProblemError
from backend_common.http import json_response, parse_path_uuid
from backend_common.keys import REQUEST_ID
from backend_common.rbac import Membership, Role, caller
from backend_common.settings import AuthClientSettings, ServiceSettings
from tests.backend_common.verifier_kit import VerifierClock
from tests.problems import assert_problem

USER_ID = uuid.uuid4()


def new_key() -> str:
    return api_keys.mint(uuid.uuid4()).key


@dataclass
class FakeAuth:
    """The auth service's introspection and membership routes for the keys in `grants`."""

    grants: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (key, project id) → the role the auth service answers for that key there
    roles: dict[tuple[str, uuid.UUID], str] = field(default_factory=dict)
    refusals: dict[str, str] = field(default_factory=dict)  # key → detail of its 401
    status: int | None = None
    delay: float = 0.0
    calls: list[Any] = field(default_factory=list)  # the headers of each call

    def grant(self, key: str, **scope: Any) -> None:
        key_id = api_keys.key_id_of(key)
        self.grants[key] = {
            "id": str(key_id),
            "user_id": str(USER_ID),
            "project_id": None,
            "role": None,
            "expires_at": None,
            **scope,
        }

    async def introspect(self, request: web.Request) -> web.Response:
        self.calls.append(request.headers.copy())
        await asyncio.sleep(self.delay)
        key = request.headers["Authorization"].removeprefix("Bearer ")
        if self.status is not None:
            return web.json_response(
                {"code": "x"}, status=self.status, headers={"Retry-After": "7"}
            )
        if key not in self.grants:
            detail = self.refusals.get(key, REFUSED)
            return web.json_response({"code": "unauthorized", "detail": detail}, status=401)
        return web.json_response(self.grants[key])

    async def membership(self, request: web.Request) -> web.Response:
        key = request.headers["Authorization"].removeprefix("Bearer ")
        if key not in self.grants:
            return web.json_response({"detail": REFUSED}, status=401)
        role = self.roles.get((key, uuid.UUID(request.match_info["project_id"])))
        if role is None:
            return web.json_response({"code": "project_not_found"}, status=404)
        return web.json_response({"role": role, "physical_only": False})


@pytest.fixture
async def fake_auth(aiohttp_server):
    fake = FakeAuth()
    app = web.Application()
    app.router.add_get("/api/v1/auth/api-key", fake.introspect)
    app.router.add_get("/api/v1/projects/{project_id}/membership", fake.membership)
    server = await aiohttp_server(app)
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def clock():
    return VerifierClock()


@pytest.fixture
async def keys(fake_auth, clock):
    """A verifier asking the fake auth service, on the test's clock, with a 5 s TTL."""
    async with aiohttp.ClientSession() as session:
        yield AuthServiceKeys(session, fake_auth.url, ttl=5.0, monotonic=clock.monotonic)


def _request(**headers: str) -> web.Request:
    return make_mocked_request("GET", "/x", headers=headers)


# --- the verifier ------------------------------------------------------------------------------


async def test_a_granted_key_is_asked_once_per_ttl(keys, fake_auth, clock):
    key = new_key()
    project_id = uuid.uuid4()
    fake_auth.grant(key, project_id=str(project_id), role="viewer")

    first = await keys.verify(key, _request())
    second = await keys.verify(key, _request())

    assert first == second
    assert first.user_id == USER_ID
    assert first.api_key == KeyScope(api_keys.key_id_of(key), project_id, Role.VIEWER, None)
    assert first.expires_at == api_keys.NEVER
    assert len(fake_auth.calls) == 1
    clock.advance(5.0)
    await keys.verify(key, _request())
    assert len(fake_auth.calls) == 2


async def test_a_revoked_key_is_refused_once_the_ttl_is_over(keys, fake_auth, clock):
    key = new_key()
    fake_auth.grant(key)
    await keys.verify(key, _request())

    del fake_auth.grants[key]
    await keys.verify(key, _request())  # still the kept grant
    clock.advance(5.0)

    with pytest.raises(InvalidToken, match="unknown or was revoked"):
        await keys.verify(key, _request())


async def test_a_refusal_is_kept_too_and_says_why(keys, fake_auth, clock):
    key = new_key()
    fake_auth.refusals[key] = EXPIRED

    for _ in range(3):
        with pytest.raises(InvalidToken) as refused:
            await keys.verify(key, _request())
        assert str(refused.value) == EXPIRED

    assert len(fake_auth.calls) == 1


async def test_a_refusal_of_unknown_wording_is_a_plain_refusal(keys, fake_auth):
    key = new_key()
    fake_auth.refusals[key] = "<script>"

    with pytest.raises(InvalidToken) as refused:
        await keys.verify(key, _request())

    assert str(refused.value) == REFUSED


@pytest.mark.parametrize(
    "key",
    [
        "etpk_",
        "etpk_" + "0" * 32 + "_" + "A" * 42,
        "etpk_" + "0" * 32 + "_" + "A" * 44,
        "etpk_" + "0" * 32 + "_" + "A" * 42 + "\x00",
        "etpk_" + "0" * 32 + "_" + "A" * 42 + "é",
        "etpk_" + "G" * 32 + "_" + "A" * 43,
        "etpk_" + "0" * 32 + "_" + "A" * 42 + "\n",
        "etpk_" + "0" * 33 + "A" * 43,
    ],
    ids=["prefix", "short", "long", "nul", "non-ascii", "id-not-hex", "newline", "no-separator"],
)
async def test_a_malformed_key_is_refused_without_asking(keys, fake_auth, key):
    with pytest.raises(InvalidToken) as refused:
        await keys.verify(key, _request())

    assert str(refused.value) == MALFORMED
    assert fake_auth.calls == []


async def test_concurrent_requests_with_one_key_share_one_call(keys, fake_auth):
    key = new_key()
    fake_auth.grant(key)
    fake_auth.delay = 0.05

    answers = await asyncio.gather(*(keys.verify(key, _request()) for _ in range(10)))

    assert {answer.user_id for answer in answers} == {USER_ID}
    assert len(fake_auth.calls) == 1


async def test_a_grant_is_not_kept_past_the_keys_expiry(keys, fake_auth, clock):
    key = new_key()
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    fake_auth.grant(key, expires_at=expires_at.isoformat())

    claims = await keys.verify(key, _request())
    clock.advance(1.5)
    await keys.verify(key, _request())

    assert claims.expires_at == int(expires_at.timestamp())
    assert claims.api_key.expires_at == expires_at
    assert len(fake_auth.calls) == 2


async def test_the_client_address_and_request_id_go_along(keys, fake_auth):
    key = new_key()
    fake_auth.grant(key)
    request = _request(**{"X-Forwarded-For": "203.0.113.5"})
    request[REQUEST_ID] = "req-1"

    await keys.verify(key, request)

    (call,) = fake_auth.calls
    assert call["X-Forwarded-For"].startswith("203.0.113.5, ")
    assert call["X-Request-Id"] == "req-1"


async def test_an_auth_service_in_trouble_is_503_and_not_kept(keys, fake_auth):
    key = new_key()
    fake_auth.grant(key)
    fake_auth.status = 500

    with pytest.raises(ProblemError) as failed:
        await keys.verify(key, _request())
    fake_auth.status = None

    assert (failed.value.status, failed.value.code) == (503, "auth_unavailable")
    assert (await keys.verify(key, _request())).user_id == USER_ID


async def test_a_throttled_address_gets_the_auth_services_429(keys, fake_auth):
    fake_auth.status = 429

    with pytest.raises(ProblemError) as throttled:
        await keys.verify(new_key(), _request())

    assert (throttled.value.status, throttled.value.headers["Retry-After"]) == (429, "7")


# --- a service with API keys ----------------------------------------------------------------

routes = web.RouteTableDef()


@routes.get("/whoami", name="whoami")
async def whoami(request: web.Request) -> web.Response:
    scope = request[CALLER].api_key
    return json_response({"user_id": request[CALLER].user_id, "key_id": scope and scope.key_id})


@routes.get("/projects/{project_id}/role", name="role")
async def role(request: web.Request) -> web.Response:
    membership = await caller(request).membership(parse_path_uuid(request, "project_id"))
    return json_response({"role": membership and membership.role})


@pytest.fixture
async def service(aiohttp_client, fake_auth):
    settings = AuthClientSettings(
        service_name="experiment", port=0, auth_url=fake_auth.url, role_cache_ttl=60
    )
    app = create_base_app(settings)
    app.router.add_routes(routes)
    return await aiohttp_client(app)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_service_takes_a_key_as_its_user(service, fake_auth):
    key = new_key()
    fake_auth.grant(key)

    response = await service.get("/whoami", headers=_bearer(key))

    assert response.status == 200
    assert await response.json() == {
        "user_id": str(USER_ID),
        "key_id": str(api_keys.key_id_of(key)),
    }


async def test_a_service_refuses_a_bad_key_like_a_bad_jwt(service, fake_auth):
    response = await service.get("/whoami", headers=_bearer(new_key()))

    body = await assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="etp", error="invalid_token"'
    assert body["detail"] == REFUSED


async def test_the_callers_role_stays_within_the_keys_scope(service, fake_auth):
    """Even from a role source that answers the user's own role, not the key's."""
    key, bound_to, elsewhere = new_key(), uuid.uuid4(), uuid.uuid4()
    fake_auth.grant(key, project_id=str(bound_to), role="viewer")
    fake_auth.roles[(key, bound_to)] = "owner"
    fake_auth.roles[(key, elsewhere)] = "owner"

    inside = await service.get(f"/projects/{bound_to}/role", headers=_bearer(key))
    outside = await service.get(f"/projects/{elsewhere}/role", headers=_bearer(key))

    assert await inside.json() == {"role": "viewer"}
    assert await outside.json() == {"role": None}


async def test_roles_are_cached_per_key_not_per_user(service, fake_auth):
    """Two keys of one user: the capped one's answer is not served to the other."""
    capped, full, project_id = new_key(), new_key(), uuid.uuid4()
    fake_auth.grant(capped, role="viewer")
    fake_auth.grant(full)
    fake_auth.roles[(capped, project_id)] = "viewer"
    fake_auth.roles[(full, project_id)] = "owner"

    first = await service.get(f"/projects/{project_id}/role", headers=_bearer(capped))
    second = await service.get(f"/projects/{project_id}/role", headers=_bearer(full))

    assert await first.json() == {"role": "viewer"}
    assert await second.json() == {"role": "owner"}


async def test_a_key_revoked_before_its_role_is_asked_is_401(service, fake_auth):
    key, project_id = new_key(), uuid.uuid4()
    fake_auth.grant(key)
    assert (await service.get("/whoami", headers=_bearer(key))).status == 200
    del fake_auth.grants[key]  # revoked: the kept grant still lets it in
    fake_auth.roles[(key, project_id)] = "owner"

    response = await service.get(f"/projects/{project_id}/role", headers=_bearer(key))

    await assert_problem(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_an_app_that_verifies_no_keys_refuses_them(aiohttp_client):
    app = create_base_app(
        ServiceSettings(service_name="gateway", port=0),
        extra_middlewares=(auth_middleware(()),),
    )
    app.router.add_routes(routes)
    client = await aiohttp_client(app)

    response = await client.get("/whoami", headers=_bearer(new_key()))

    body = await assert_problem(response, 401, "unauthorized")
    assert body["detail"] == "API keys are not accepted here."


async def test_membership_scope_limits_and_caps():
    key_id, project_id = uuid.uuid4(), uuid.uuid4()
    owner = Membership(Role.OWNER, physical_only=True)

    assert KeyScope(key_id).limit(project_id, owner) == owner
    assert KeyScope(key_id, project_id=uuid.uuid4()).limit(project_id, owner) is None
    assert KeyScope(key_id, role=Role.VIEWER).limit(project_id, owner) == Membership(
        Role.VIEWER, physical_only=True
    )
    assert KeyScope(key_id, role=Role.EDITOR).limit(project_id, None) is None
    assert KeyScope(key_id, role=Role.EDITOR).cap(Role.VIEWER) == Role.VIEWER
