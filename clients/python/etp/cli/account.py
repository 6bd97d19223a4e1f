"""`etp login` and `etp keys create/list/revoke`.

API keys are made, listed and revoked with a password sign-in only (the API refuses an API key
there): these commands sign in with `--username` and a password read from `--password-stdin`,
`ETP_PASSWORD` or a prompt, and use the access token for that one command; nothing of it is
stored."""

import os
import socket
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer

from etp.cli.common import STATE, JsonOption, details, emit, note, table
from etp.client import Client
from etp.config import Config, load_url, save_config
from etp.errors import UsageError

keys = typer.Typer(
    name="keys", help="Your API keys (needs a password sign-in).", no_args_is_help=True
)

PASSWORD_ENV = "ETP_PASSWORD"
UsernameOption = Annotated[
    str | None, typer.Option("--username", "-u", envvar="ETP_USERNAME", help="Sign in as.")
]
PasswordStdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin.")
]


class Role(StrEnum):
    editor = "editor"
    viewer = "viewer"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise UsageError(f"no password: use --password-stdin or {PASSWORD_ENV}")
    return str(typer.prompt("Password", hide_input=True, err=True))


def signed_in(username: str | None, password_stdin: bool) -> Client:
    """A client carrying an access token of a password sign-in."""
    if not username:
        raise UsageError("API keys are managed with a password sign-in: give --username")
    url = load_url(STATE.url)
    with Client(url, None) as anonymous:
        tokens = anonymous.post(
            "/api/v1/auth/login", {"username": username, "password": _password(password_stdin)}
        )
    return Client(url, tokens["access_token"])


def login(
    url: Annotated[
        str | None, typer.Option("--url", help="The gateway, e.g. http://host:8000.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="An API key; '-' reads it from stdin.")
    ] = None,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Store the URL and an API key in your config dir (mode 0600) after checking them. With
    --username instead of --api-key, sign in with a password and store a new key made for this
    machine."""
    url = (url or STATE.url or "").rstrip("/")
    if not url:
        raise UsageError("give --url")
    if api_key == "-":
        api_key = sys.stdin.readline().strip()
    if not api_key:
        if not username:
            raise UsageError("give --api-key, or --username to make a key with a password")
        STATE.url = url
        with signed_in(username, password_stdin) as session:
            made = session.post(
                "/api/v1/api-keys", {"name": f"etp on {socket.gethostname()}"[:100]}
            )
        api_key = str(made["key"])
    with Client(url, api_key) as api:
        grant = api.get("/api/v1/auth/api-key")
    path = save_config(Config(url, api_key))
    result = {"url": url, "config": str(path), **{k: grant.get(k) for k in _GRANT}}
    scope = f"project {grant['project_id']}" if grant.get("project_id") else "every project"
    emit(result, f"logged in to {url}: key {grant['id']} for {scope}; stored in {path}")


_GRANT = ("id", "user_id", "project_id", "role", "expires_at")


@keys.command("create")
def keys_create(
    name: str,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Project id.")] = None,
    role: Annotated[Role | None, typer.Option("--role", help="At most this role.")] = None,
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", min=0.001, help="Default: never.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Make an API key; its secret is shown this once."""
    body: dict[str, Any] = {"name": name}
    if project is not None:
        body["project_id"] = project
    if role is not None:
        body["role"] = role.value
    if expires_in_days is not None:
        body["expires_at"] = (datetime.now(UTC) + timedelta(days=expires_in_days)).isoformat()
    with signed_in(username, password_stdin) as session:
        made = session.post("/api/v1/api-keys", body)
    if not STATE.json:
        note("the key is shown this once: keep it now")
    emit(made, made["key"])


@keys.command("list")
def keys_list(
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Your API keys (never their secrets)."""
    with signed_in(username, password_stdin) as session:
        items = list(session.paginate("/api/v1/api-keys"))
    columns = ["id", "name", "preview", "project_id", "role", "expires_at", "last_used_at"]
    emit(items, table(items, columns))


@keys.command("revoke")
def keys_revoke(
    key_id: str,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Revoke an API key (it stops working at once)."""
    with signed_in(username, password_stdin) as session:
        session.delete(f"/api/v1/api-keys/{key_id}")
    emit({"id": key_id, "revoked": True}, details({"id": key_id, "revoked": True}))
