"""The real auth service in-process, for the tests of another service that takes API keys: people
sign up, make projects and keys there, and the service under test asks it about them.

    auth = RealAuth(await service_app_client("auth"))
    alice = await auth.sign_up("alice")
    project_id = await auth.project(alice)
    key = await auth.key(alice, project_id=project_id, role="viewer")
    experiment = await service_app_client("experiment", auth_url=auth.url)
    await experiment.get(..., headers=auth.through(alice, key).headers)
"""

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from tests.experiment.factories import expect

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Person:
    id: str
    headers: dict[str, str]


@dataclass(frozen=True)
class RealAuth:
    client: TestClient

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def sign_up(self, name: str | None = None) -> Person:
        name = name or f"u{uuid.uuid4().hex[:10]}"
        body = {"username": name, "email": f"{name}@example.org", "password": PASSWORD}
        user = await expect(await self.client.post("/api/v1/auth/register", json=body), 201)
        login = {"username": name, "password": PASSWORD}
        tokens = await expect(await self.client.post("/api/v1/auth/login", json=login), 200)
        return Person(user["id"], {"Authorization": f"Bearer {tokens['access_token']}"})

    async def project(self, owner: Person, **members: str) -> str:
        """A new project of `owner`; `members` maps user ids to roles."""
        response = await self.client.post(
            "/api/v1/projects", json={"name": "Wind tunnel"}, headers=owner.headers
        )
        project_id = (await expect(response, 201))["id"]
        for user_id, role in members.items():
            added = await self.client.post(
                f"/api/v1/projects/{project_id}/members",
                json={"user_id": user_id, "role": role},
                headers=owner.headers,
            )
            await expect(added, 201)
        return project_id

    async def key(self, person: Person, **body: Any) -> dict[str, Any]:
        """A new API key of `person` (the secret in `key`)."""
        response = await self.client.post(
            "/api/v1/api-keys", json={"name": "ci", **body}, headers=person.headers
        )
        return await expect(response, 201)

    async def revoke(self, person: Person, key: dict[str, Any]) -> None:
        response = await self.client.delete(f"/api/v1/api-keys/{key['id']}", headers=person.headers)
        assert response.status == 204, await response.text()

    @staticmethod
    def through(person: Person, key: dict[str, Any]) -> Person:
        """`person` calling with the API key instead of their access token."""
        return dataclasses.replace(person, headers={"Authorization": f"Bearer {key['key']}"})
