"""The auth service as seen by the other services, on testsuite's mockserver.

`auth_stub` publishes a test signing key's JWKS and answers the membership endpoint from a table
the test fills: `user = auth_stub.user(); auth_stub.grant(user, project_id, "editor")`, and
`auth_stub.physical_only.add(project_id)` sets a project's raw-value policy.
"""

import re
import uuid
from dataclasses import dataclass, field

import jwt
import pytest

from tests.tokens import SigningKey, jwks

_MEMBERSHIP = re.compile(r"/auth/api/v1/projects/(?P<project>[^/]+)/membership$")


@dataclass
class StubUser:
    id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class AuthStub:
    key: SigningKey
    roles: dict[tuple[uuid.UUID, uuid.UUID], str] = field(default_factory=dict)
    # Projects whose raw-value policy is physical_only.
    physical_only: set[uuid.UUID] = field(default_factory=set)

    def user(self) -> StubUser:
        user_id = uuid.uuid4()
        return StubUser(id=user_id, token=self.key.mint(str(user_id)))

    def grant(self, user: StubUser, project_id: uuid.UUID, role: str | None) -> None:
        if role is None:
            self.roles.pop((user.id, project_id), None)
        else:
            self.roles[(user.id, project_id)] = role

    def member(self, project_id: uuid.UUID, role: str) -> StubUser:
        user = self.user()
        self.grant(user, project_id, role)
        return user


@pytest.fixture(scope="session")
def auth_signing_key() -> SigningKey:
    return SigningKey.generate(kid="stub-1")


@pytest.fixture
def auth_stub(mockserver, auth_signing_key) -> AuthStub:
    stub = AuthStub(key=auth_signing_key)

    @mockserver.json_handler("/auth/.well-known/jwks.json")
    def _jwks(request):
        return jwks(auth_signing_key)

    @mockserver.json_handler("/auth/api/v1/projects/", prefix=True)
    def _membership(request):
        match = _MEMBERSHIP.match(request.path)
        if match is None:
            return mockserver.make_response(status=404)
        token = request.headers["Authorization"].removeprefix("Bearer ")
        user_id = uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sub"])
        project_id = uuid.UUID(match["project"])
        role = stub.roles.get((user_id, project_id))
        if role is None:
            return mockserver.make_response(json={"code": "project_not_found"}, status=404)
        return {
            "project_id": str(project_id),
            "user_id": str(user_id),
            "role": role,
            "physical_only": project_id in stub.physical_only,
        }

    return stub
