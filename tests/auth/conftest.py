"""Factories for the auth API tests: logged-in users, projects with members, stored rows."""

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from tests.auth.accounts_api import AccountsApi
from tests.problems import assert_problem

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    email: str
    headers: dict[str, str] = field(compare=False, repr=False)


class AuthApi:
    """The auth service's HTTP API as some caller; `None` sends no token."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def request(
        self, method: str, path: str, caller: Account | None, **kwargs: Any
    ) -> aiohttp.ClientResponse:
        headers = {**(caller.headers if caller else {}), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def call(
        self, method: str, path: str, caller: Account | None, *, status: int = 200, **kwargs: Any
    ) -> Any:
        """Asserts the status and returns the parsed body (None when empty)."""
        response = await self.request(method, path, caller, **kwargs)
        text = await response.text()
        assert response.status == status, (
            f"{method} {path}: expected {status}, got {response.status}: {text}"
        )
        return orjson.loads(text) if text else None

    async def get(self, path: str, caller: Account | None, **kwargs: Any) -> Any:
        return await self.call("GET", path, caller, **kwargs)

    async def post(self, path: str, caller: Account | None, **kwargs: Any) -> Any:
        return await self.call("POST", path, caller, **kwargs)

    async def patch(self, path: str, caller: Account | None, **kwargs: Any) -> Any:
        return await self.call("PATCH", path, caller, **kwargs)

    async def delete(
        self, path: str, caller: Account | None, *, status: int = 204, **kwargs: Any
    ) -> Any:
        return await self.call("DELETE", path, caller, status=status, **kwargs)

    async def problem(
        self, method: str, path: str, caller: Account | None, status: int, code: str, **kwargs: Any
    ) -> dict[str, Any]:
        """Asserts a problem+json answer with that status and code and returns its body."""
        return await assert_problem(
            await self.request(method, path, caller, **kwargs), status, code
        )

    async def walk(self, path: str, caller: Account, **params: Any) -> list[list[dict[str, Any]]]:
        """Every page of a list, following next_cursor to the end."""
        pages = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = await self.get(path, caller, params=query)
            pages.append(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return pages
            assert len(pages) < 100, "next_cursor never ends"


@pytest.fixture
async def api(service_app_client):
    return AuthApi(await service_app_client("auth"))


@pytest.fixture
def user(api):
    """`await user("alice")`: a registered user with a fresh access token."""
    numbers = itertools.count(1)

    async def create(username: str | None = None, *, email: str | None = None) -> Account:
        username = username or f"user{next(numbers)}"
        email = email or f"{username.lower()}@example.org"
        registered = await api.post(
            "/api/v1/auth/register",
            None,
            json={"username": username, "email": email, "password": PASSWORD},
            status=201,
        )
        tokens = await api.post(
            "/api/v1/auth/login", None, json={"username": username, "password": PASSWORD}
        )
        return Account(
            id=registered["id"],
            username=username,
            email=email,
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )

    return create


@pytest.fixture
def project(api):
    """`await project(alice, editors=[bob])`: a project alice created, with members added."""

    async def create(
        owner: Account,
        *,
        name: str = "Wind tunnel",
        description: str = "",
        owners: Iterable[Account] = (),
        editors: Iterable[Account] = (),
        viewers: Iterable[Account] = (),
    ) -> dict[str, Any]:
        created = await api.post(
            "/api/v1/projects", owner, json={"name": name, "description": description}, status=201
        )
        for role, members in (("owner", owners), ("editor", editors), ("viewer", viewers)):
            for member in members:
                await api.post(
                    f"/api/v1/projects/{created['id']}/members",
                    owner,
                    json={"user_id": member.id, "role": role},
                    status=201,
                )
        return created

    return create


@pytest.fixture
def stored_members(pgsql):
    """The project_members rows of a project as {username: role}."""

    def members(project_id: str) -> dict[str, str]:
        cursor = pgsql["auth"].cursor()
        cursor.execute(
            "SELECT u.username, m.role FROM project_members m JOIN users u ON u.id = m.user_id"
            " WHERE m.project_id = %s",
            (project_id,),
        )
        return dict(cursor.fetchall())

    return members


@pytest.fixture
def stored_project(pgsql):
    """The projects row as a dict, or None once it is gone."""

    def get(project_id: str) -> dict[str, Any] | None:
        cursor = pgsql["auth"].cursor()
        cursor.execute(
            "SELECT name, description FROM projects WHERE id = %s",
            (project_id,),
        )
        row = cursor.fetchone()
        return {"name": row[0], "description": row[1]} if row else None

    return get


@pytest.fixture
async def accounts(service_app_client):
    """The accounts API of an in-process auth app (see accounts_api.py)."""
    return AccountsApi(await service_app_client("auth"))


@pytest.fixture
async def auth_db(pgsql, database_url):
    conn = await asyncpg.connect(database_url("auth"))
    yield conn
    await conn.close()
