"""The experiment app served from a background thread, for synchronous tests (hypothesis' stateful).

with serve_experiment(settings_for, db=pgsql["experiment"]) as live:
    editor = live.member(project_id, Role.EDITOR)
    status, body = live.call(editor, "GET", f"/api/v1/runs/{run_id}")

The app runs on its own event loop in a daemon thread, with a tiny JWKS endpoint beside it standing
in for the auth service; roles come from an in-memory table instead of the membership endpoint.
"""

import asyncio
import contextlib
import http.client
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from backend_common.auth import AccessClaims
from backend_common.rbac import Membership, Role
from experiment_service.app import create_app
from experiment_service.settings import ExperimentSettings
from tests.tokens import SigningKey, jwks


@dataclass
class ProjectRoles:
    """The auth service's membership answers, as a RoleSource."""

    grants: dict[tuple[uuid.UUID, uuid.UUID], Role] = field(default_factory=dict)

    async def membership(self, caller: AccessClaims, project_id: uuid.UUID) -> Membership | None:
        role = self.grants.get((caller.user_id, project_id))
        return Membership(role) if role is not None else None


class BackgroundLoop:
    """Serves aiohttp apps on 127.0.0.1 from an event loop in a daemon thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runners: list[web.AppRunner] = []

    def __enter__(self) -> "BackgroundLoop":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._call(self._cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def serve(self, app: web.Application) -> str:
        """Starts `app` on a free port and gives its base URL."""
        return self._call(self._serve(app))

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def _cleanup(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()


def jwks_app(key: SigningKey) -> web.Application:
    async def keys(request: web.Request) -> web.Response:
        return web.json_response(jwks(key))

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", keys)
    return app


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    role: Role
    token: str


class LiveExperiment:
    """A blocking client of the served app, its role table, and its database's audit rows."""

    def __init__(self, base_url: str, key: SigningKey, roles: ProjectRoles, db: Any) -> None:
        url = urlsplit(base_url)
        self._conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        self._key = key
        self._roles = roles
        self._db = db

    def member(self, project_id: uuid.UUID, role: Role) -> User:
        user_id = uuid.uuid4()
        self._roles.grants[(user_id, project_id)] = role
        return User(id=user_id, role=role, token=self._key.mint(str(user_id)))

    def call(self, user: User, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """The status and the parsed JSON body (None when empty)."""
        headers = {"Authorization": f"Bearer {user.token}"}
        payload = None
        if body is not None:
            payload = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        self._conn.request(method, path, body=payload, headers=headers)
        response = self._conn.getresponse()
        data = response.read()
        return response.status, orjson.loads(data) if data else None

    def audit_rows(self, project_id: uuid.UUID, after_id: int) -> list[tuple]:
        """(id, action, entity_id, actor_role) of the project's audit rows after `after_id`."""
        cursor = self._db.cursor()
        cursor.execute(
            "SELECT id, action, entity_id::text, actor_role FROM audit_log"
            " WHERE project_id = %s AND id > %s ORDER BY id",
            (str(project_id), after_id),
        )
        return cursor.fetchall()

    def close(self) -> None:
        self._conn.close()


@contextlib.contextmanager
def serve_experiment(
    settings_for: Callable[..., ExperimentSettings], *, db: Any
) -> Iterator[LiveExperiment]:
    """`settings_for(auth_url=..., jwks_url=...)` gives the app's settings (the test database's)."""
    key = SigningKey.generate()
    roles = ProjectRoles()
    with BackgroundLoop() as loop:
        auth_url = loop.serve(jwks_app(key))
        settings = settings_for(auth_url=auth_url, jwks_url=f"{auth_url}/.well-known/jwks.json")
        live = LiveExperiment(loop.serve(create_app(settings, roles=roles)), key, roles, db)
        try:
            yield live
        finally:
            live.close()
