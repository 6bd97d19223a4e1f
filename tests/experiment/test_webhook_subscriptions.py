"""Webhook subscriptions: the secret shown once, changes, who may do what, bad requests, and the
SSRF guard when a target is saved."""

import asyncio
import re
import uuid
from typing import Any

import pytest

from tests.experiment.factories import audit_rows, expect
from tests.experiment.webhook_kit import HOOKS, count_rows, hook_url, subscribe
from tests.plugins.roles import role_matrix
from tests.problems import assert_problem
from tests.tokens import SigningKey

SECRET = r"^whsec_[A-Za-z0-9+/]{43}=$"


def stored(pgsql, webhook_id: Any) -> dict[str, Any] | None:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT target_url, event_types, active, secret, previous_secret,"
            " previous_secret_expires_at FROM webhook_subscriptions WHERE id = %s",
            (str(webhook_id),),
        )
        row = cursor.fetchone()
        return dict(row) if row else None


async def test_create_shows_the_secret_once_and_stores_it(
    hooks, pgsql, editor, project_id, receiver
):
    hook = receiver()

    response = await hooks.post(
        HOOKS,
        json={
            "project_id": str(project_id),
            "target_url": hook.url,
            "event_types": ["run.started", "run.finished", "run.started"],
            "description": "dashboard",
        },
        headers=editor.headers,
    )

    created = await expect(response, 201)
    assert response.headers["Location"] == hook_url(created["id"])
    assert response.headers["Cache-Control"] == "no-store"
    assert created["event_types"] == ["run.started", "run.finished"]
    assert created["active"] is True
    assert created["created_by"] == str(editor.id)
    assert re.fullmatch(SECRET, created["secret"])
    assert stored(pgsql, created["id"])["secret"] == created["secret"]
    # Read back by an editor: viewers see the target redacted (test_security_webhook_visibility).
    got = await expect(await hooks.get(hook_url(created["id"]), headers=editor.headers), 200)
    assert "secret" not in got
    assert got == {k: v for k, v in created.items() if k != "secret"}
    page = await expect(
        await hooks.get(HOOKS, params={"project_id": str(project_id)}, headers=editor.headers),
        200,
    )
    assert page == {"items": [got], "next_cursor": None}
    (audit,) = audit_rows(pgsql, created["id"])
    assert audit["action"] == "webhook.created"
    assert created["secret"] not in str(audit)


async def test_star_covers_every_event_type(hooks, editor, project_id, receiver):
    created = await subscribe(
        hooks, editor, project_id, receiver().url, ["run.created", "*", "run.started"]
    )

    assert created["event_types"] == ["*"]


async def test_keyed_create_replays_without_the_secret(hooks, pgsql, editor, project_id, receiver):
    body = {"project_id": str(project_id), "target_url": receiver().url, "event_types": ["*"]}
    headers = {**editor.headers, "Idempotency-Key": "hook-1"}

    first = await expect(await hooks.post(HOOKS, json=body, headers=headers), 201)
    replay = await hooks.post(HOOKS, json=body, headers=headers)

    again = await expect(replay, 201)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert again == {**first, "secret": None}
    assert count_rows(pgsql, "webhook_subscriptions") == 1


async def test_update_changes_fields_and_is_audited(hooks, pgsql, editor, project_id, receiver):
    created = await subscribe(hooks, editor, project_id, receiver().url, ["run.created"])
    other = receiver()

    response = await hooks.patch(
        hook_url(created["id"]),
        json={"target_url": other.url, "event_types": ["run.archived"], "active": False},
        headers=editor.headers,
    )

    updated = await expect(response, 200)
    assert updated["target_url"] == other.url
    assert updated["event_types"] == ["run.archived"]
    assert updated["active"] is False
    assert stored(pgsql, created["id"])["secret"] == created["secret"]
    audit = audit_rows(pgsql, created["id"])[-1]
    assert audit["action"] == "webhook.updated"
    assert set(audit["after"]) == {"target_url", "event_types", "active"}


@pytest.mark.parametrize(
    "body",
    [{}, {"active": None}, {"event_types": []}, {"event_types": ["run.exploded"]}, {"secret": "x"}],
)
async def test_update_with_bad_body_is_rejected(hooks, editor, project_id, receiver, body):
    created = await subscribe(hooks, editor, project_id, receiver().url)

    response = await hooks.patch(hook_url(created["id"]), json=body, headers=editor.headers)

    await assert_problem(response, 422, "validation_failed")


async def test_rotate_secret_keeps_the_old_one_for_the_grace_period(
    hooks, pgsql, clock, editor, project_id, receiver
):
    created = await subscribe(hooks, editor, project_id, receiver().url)

    response = await hooks.post(f"{hook_url(created['id'])}/rotate-secret", headers=editor.headers)

    rotated = await expect(response, 200)
    assert response.headers["Cache-Control"] == "no-store"
    assert rotated["secret"] != created["secret"]
    row = stored(pgsql, created["id"])
    assert row["secret"] == rotated["secret"]
    assert row["previous_secret"] == created["secret"]
    assert (row["previous_secret_expires_at"] - clock.now).total_seconds() == 86400
    (audit,) = [r for r in audit_rows(pgsql, created["id"]) if r["action"].endswith("rotated")]
    assert audit["after"] == {"grace_seconds": 86400}
    assert rotated["secret"] not in str(audit)
    assert created["secret"] not in str(audit)


async def test_delete_removes_the_subscription_and_its_deliveries(
    hooks, pgsql, editor, project_id, receiver
):
    hook = receiver()
    created = await subscribe(hooks, editor, project_id, hook.url)
    await expect(await hooks.post(f"{hook_url(created['id'])}/ping", headers=editor.headers), 202)
    await hook.wait_for(1)

    response = await hooks.delete(hook_url(created["id"]), headers=editor.headers)

    assert response.status == 204
    assert stored(pgsql, created["id"]) is None
    assert count_rows(pgsql, "webhook_deliveries") == 0
    assert count_rows(pgsql, "webhook_attempts") == 0
    assert (await hooks.get(hook_url(created["id"]), headers=editor.headers)).status == 404


async def test_list_pages_through_subscriptions(hooks, editor, project_id, receiver):
    made = [(await subscribe(hooks, editor, project_id, receiver().url))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"project_id": str(project_id), "limit": "2"}
        if cursor:
            params["cursor"] = cursor
        page = await expect(await hooks.get(HOOKS, params=params, headers=editor.headers), 200)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == made


async def test_subscriptions_per_project_are_bounded(
    make_hooks_client, pgsql, editor, project_id, receiver
):
    client = await make_hooks_client(webhook_max_subscriptions=2)
    for _ in range(2):
        await subscribe(client, editor, project_id, receiver().url)

    response = await client.post(
        HOOKS,
        json={"project_id": str(project_id), "target_url": receiver().url, "event_types": ["*"]},
        headers=editor.headers,
    )

    await assert_problem(response, 409, "webhook_limit")
    assert count_rows(pgsql, "webhook_subscriptions") == 2


async def test_concurrent_creates_stop_at_the_cap(
    make_hooks_client, pgsql, editor, project_id, receiver
):
    client = await make_hooks_client(webhook_max_subscriptions=3)
    url = receiver().url
    body = {"project_id": str(project_id), "target_url": url, "event_types": ["*"]}

    responses = await asyncio.gather(
        *(client.post(HOOKS, json=body, headers=editor.headers) for _ in range(10))
    )

    statuses = sorted(response.status for response in responses)
    assert statuses == [201] * 3 + [409] * 7
    for response in responses:
        if response.status == 409:
            await assert_problem(response, 409, "webhook_limit")
    assert count_rows(pgsql, "webhook_subscriptions") == 3


async def test_ping_of_inactive_subscription_is_refused(hooks, editor, project_id, receiver):
    created = await subscribe(hooks, editor, project_id, receiver().url, active=False)

    response = await hooks.post(f"{hook_url(created['id'])}/ping", headers=editor.headers)

    await assert_problem(response, 409, "webhook_inactive")


# --- SSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://127.0.0.1:8002/api/v1/runs", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.10:8080/", "private"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://100.64.0.1/", "not a public"),
        ("http://224.0.0.1/", "multicast"),
        ("http://localhost/", "loopback"),
        ("file:///etc/passwd", "http and https"),
        ("ftp://example.org/", "http and https"),
        ("gopher://127.0.0.1:6379/_", "http and https"),
        ("http:///no-host", "no host"),
        ("http://example.org:99999/", "valid URL"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
async def test_target_that_is_not_public_is_refused(
    make_hooks_client, pgsql, editor, project_id, url, why
):
    client = await make_hooks_client(webhook_allowed_hosts=())

    response = await client.post(
        HOOKS,
        json={"project_id": str(project_id), "target_url": url, "event_types": ["*"]},
        headers=editor.headers,
    )

    problem = await assert_problem(response, 422, "webhook_target_refused")
    (error,) = problem["errors"]
    assert error["field"] == "target_url"
    assert why in error["message"], error
    assert count_rows(pgsql, "webhook_subscriptions") == 0


async def test_changing_the_target_to_a_private_address_is_refused(
    make_hooks_client, pgsql, editor, project_id, receiver
):
    client = await make_hooks_client()
    created = await subscribe(client, editor, project_id, receiver().url)

    response = await client.patch(
        hook_url(created["id"]), json={"target_url": "http://10.1.2.3/"}, headers=editor.headers
    )

    await assert_problem(response, 422, "webhook_target_refused")
    assert stored(pgsql, created["id"])["target_url"] == created["target_url"]


async def test_allow_list_names_host_and_port(
    make_hooks_client, mockserver_host, editor, project_id
):
    client = await make_hooks_client(webhook_allowed_hosts=(mockserver_host,))
    host = mockserver_host.rsplit(":", 1)[0]

    allowed = await subscribe(client, editor, project_id, f"http://{mockserver_host}/hook")
    response = await client.post(
        HOOKS,
        json={
            "project_id": str(project_id),
            "target_url": f"http://{host}:1/",
            "event_types": ["*"],
        },
        headers=editor.headers,
    )

    assert allowed["target_url"] == f"http://{mockserver_host}/hook"
    await assert_problem(response, 422, "webhook_target_refused")


# --- roles, tokens, other projects, bad bodies ----------------------------------------------

ROUTES = {
    "create": ("POST", HOOKS),
    "list": ("GET", HOOKS),
    "get": ("GET", "{hook}"),
    "update": ("PATCH", "{hook}"),
    "delete": ("DELETE", "{hook}"),
    "rotate": ("POST", "{hook}/rotate-secret"),
    "ping": ("POST", "{hook}/ping"),
    "deliveries": ("GET", "{hook}/deliveries"),
}
# route -> answer per role: "ok" for any success, (status, code) for a problem.
FORBIDDEN = (403, "forbidden")
NO_HOOK = (404, "webhook_not_found")
NO_PROJECT = (404, "not_found")
READ = {"owner": "ok", "editor": "ok", "viewer": "ok", "stranger": NO_HOOK}
WRITE = {"owner": "ok", "editor": "ok", "viewer": FORBIDDEN, "stranger": NO_HOOK}
MATRIX = {
    "create": {**WRITE, "stranger": NO_PROJECT},
    "list": {**READ, "stranger": NO_PROJECT},
    "get": READ,
    "update": WRITE,
    "delete": WRITE,
    "rotate": WRITE,
    "ping": WRITE,
    "deliveries": READ,
}


def _request(route: str, created: dict, project_id: Any, url: str) -> tuple[str, str, Any, Any]:
    method, path = ROUTES[route]
    path = path.format(hook=hook_url(created["id"]))
    body: Any = None
    params = None
    if route == "create":
        body = {"project_id": str(project_id), "target_url": url, "event_types": ["*"]}
    elif route == "update":
        body = {"description": "changed"}
    elif route == "list":
        params = {"project_id": str(project_id)}
    return method, path, body, params


@role_matrix(MATRIX)
async def test_role_matrix(
    hooks, pgsql, auth_stub, caller_as, project_id, receiver, route, role, expected
):
    hook = receiver()
    creator = auth_stub.member(project_id, "editor")
    created = await subscribe(hooks, creator, project_id, hook.url)
    user = caller_as(role, project_id)
    # An owner elsewhere too: for a stranger the project is not theirs, so neither its webhooks.
    auth_stub.grant(user, uuid.uuid4(), "owner")
    method, path, body, params = _request(route, created, project_id, receiver().url)

    response = await hooks.request(method, path, json=body, params=params, headers=user.headers)

    if expected == "ok":
        assert response.status < 300, await response.text()
    else:
        await assert_problem(response, *expected)
    if expected == FORBIDDEN:
        assert stored(pgsql, created["id"])["secret"] == created["secret"]
    if route == "ping" and response.status == 202:
        await hook.wait_for(1)


def _token_headers(kind: str, user: Any, auth_signing_key: SigningKey) -> dict[str, str]:
    if kind == "missing":
        return {}
    if kind == "forged":
        forger = SigningKey.generate(kid=auth_signing_key.kid)
        return {"Authorization": f"Bearer {forger.mint(str(user.id))}"}
    assert kind == "expired"
    return {"Authorization": f"Bearer {auth_signing_key.mint(str(user.id), ttl=-100)}"}


@pytest.mark.parametrize("kind", ["missing", "expired", "forged"])
@pytest.mark.parametrize("route", [*sorted(ROUTES), "redeliver"])
async def test_routes_without_valid_token_are_unauthorized(
    hooks, pgsql, auth_stub, auth_signing_key, project_id, receiver, editor, route, kind
):
    created = await subscribe(hooks, editor, project_id, receiver().url)
    if route == "redeliver":
        method, path, body, params = (
            "POST", f"{HOOKS}/deliveries/{uuid.uuid4()}/redeliver", None, None,
        )  # fmt: skip
    else:
        method, path, body, params = _request(route, created, project_id, receiver().url)

    response = await hooks.request(
        method,
        path,
        json=body,
        params=params,
        headers=_token_headers(kind, editor, auth_signing_key),
    )

    await assert_problem(response, 401, "unauthorized")
    assert stored(pgsql, created["id"])["secret"] == created["secret"]
    assert count_rows(pgsql, "webhook_subscriptions") == 1


GOOD = {"target_url": "http://example.org/hook", "event_types": ["*"]}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        ({**GOOD, "event_types": "run.created"}, 422, "validation_failed"),
        ({**GOOD, "event_types": []}, 422, "validation_failed"),
        ({**GOOD, "event_types": ["run.exploded"]}, 422, "validation_failed"),
        ({**GOOD, "active": "yes please"}, 422, "validation_failed"),
        ({**GOOD, "active": 1}, 422, "validation_failed"),
        ({**GOOD, "target_url": 42}, 422, "validation_failed"),
        ({**GOOD, "target_url": "http://example.org/" + "a" * 2000}, 422, "validation_failed"),
        ({**GOOD, "description": "x\u0000y"}, 422, "validation_failed"),
        ({**GOOD, "secret": "whsec_mine"}, 422, "validation_failed"),
        ({"event_types": ["*"]}, 422, "validation_failed"),
        ({**GOOD, "description": "x" * (2 * 1024 * 1024)}, 413, "payload_too_large"),
    ],
)
async def test_create_with_bad_body_is_rejected(
    make_hooks_client, pgsql, editor, project_id, body, status, code
):
    client = await make_hooks_client(webhook_allowed_hosts=())
    if isinstance(body, dict):
        body = {"project_id": str(project_id), **body}
        response = await client.post(HOOKS, json=body, headers=editor.headers)
    else:
        response = await client.post(
            HOOKS, data=body, headers={**editor.headers, "Content-Type": "application/json"}
        )

    await assert_problem(response, status, code)
    assert count_rows(pgsql, "webhook_subscriptions") == 0


async def test_create_without_json_content_type_is_rejected(hooks, editor, project_id):
    response = await hooks.post(
        HOOKS, data=b"{}", headers={**editor.headers, "Content-Type": "text/plain"}
    )

    await assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 422, "validation_failed"),
        ({"project_id": "nope"}, 422, "validation_failed"),
        ({"colour": "red"}, 422, "validation_failed"),
        ({"limit": "0"}, 422, "validation_failed"),
        ({"cursor": "%%%"}, 400, "invalid_cursor"),
    ],
)
async def test_list_with_bad_query_is_rejected(hooks, editor, project_id, params, status, code):
    query = {"project_id": str(project_id), **params} if params else {}

    response = await hooks.get(HOOKS, params=query, headers=editor.headers)

    await assert_problem(response, status, code)


@pytest.mark.parametrize(
    "params", [{"status": "lost"}, {"colour": "red"}, {"limit": "501"}, {"cursor": "garbage"}]
)
async def test_deliveries_with_bad_query_are_rejected(hooks, editor, project_id, receiver, params):
    created = await subscribe(hooks, editor, project_id, receiver().url)

    response = await hooks.get(
        f"{hook_url(created['id'])}/deliveries", params=params, headers=editor.headers
    )

    if "cursor" in params:
        await assert_problem(response, 400, "invalid_cursor")
    else:
        await assert_problem(response, 422, "validation_failed")


async def test_other_projects_subscription_is_not_found(
    hooks, pgsql, auth_stub, editor, project_id, receiver
):
    created = await subscribe(hooks, editor, project_id, receiver().url)
    other_project = uuid.uuid4()
    outsider = auth_stub.member(other_project, "owner")

    for method, path, body in [
        ("GET", hook_url(created["id"]), None),
        ("PATCH", hook_url(created["id"]), {"active": False}),
        ("PATCH", hook_url(created["id"]), {"target_url": "http://10.0.0.1/"}),
        ("DELETE", hook_url(created["id"]), None),
        ("POST", f"{hook_url(created['id'])}/rotate-secret", {}),
        ("POST", f"{hook_url(created['id'])}/ping", {}),
        ("GET", f"{hook_url(created['id'])}/deliveries", None),
        ("GET", hook_url("not-a-uuid"), None),
    ]:
        response = await hooks.request(method, path, json=body, headers=outsider.headers)
        assert response.status == 404, (method, path, await response.text())
    page = await expect(
        await hooks.get(HOOKS, params={"project_id": str(other_project)}, headers=outsider.headers),
        200,
    )
    assert page["items"] == []
    assert stored(pgsql, created["id"])["active"] is True


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("POST", "{hook}/rotate-secret", {"grace_seconds": False}),
        ("POST", "{hook}/rotate-secret", {"grace_seconds": "60"}),
        ("PATCH", "{hook}", {"active": 0}),
        ("PATCH", "{hook}", {"active": "false"}),
    ],
)
async def test_values_of_another_json_type_are_refused(
    hooks, pgsql, editor, project_id, receiver, method, route, body
):
    """As the spec says: a boolean is no integer and a number no boolean, whatever Python would
    make of them."""
    created = await subscribe(hooks, editor, project_id, receiver().url)

    path = route.format(hook=hook_url(created["id"]))
    response = await hooks.request(method, path, json=body, headers=editor.headers)

    await assert_problem(response, 422, "validation_failed")
    after = stored(pgsql, created["id"])
    assert after["secret"] == created["secret"]
    assert after["previous_secret"] is None
    assert after["active"] is True


BODY_ROUTES = {
    "update": ("PATCH", "{hook}", {"active": "yes please"}),
    "rotate": ("POST", "{hook}/rotate-secret", {"grace_seconds": "soon"}),
    "ping": ("POST", "{hook}/ping", []),
    "redeliver": ("POST", "/api/v1/webhooks/deliveries/{delivery}/redeliver", "now"),
}
HUGE = {"description": "x" * (2 * 1024 * 1024)}


@pytest.mark.parametrize("case", ["malformed", "wrong_type", "unknown_field", "huge", "text"])
@pytest.mark.parametrize("route", sorted(BODY_ROUTES))
async def test_body_routes_reject_bad_bodies(
    hooks, pgsql, editor, project_id, receiver, route, case
):
    hook = receiver()
    created = await subscribe(hooks, editor, project_id, hook.url)
    ping = await expect(
        await hooks.post(f"{hook_url(created['id'])}/ping", headers=editor.headers), 202
    )
    await hook.wait_for(1)
    method, template, wrong = BODY_ROUTES[route]
    path = template.format(hook=hook_url(created["id"]), delivery=ping["id"])
    json_headers = {**editor.headers, "Content-Type": "application/json"}
    if case == "malformed":
        response = await hooks.request(method, path, data=b'{"active": tru', headers=json_headers)
        expected = (400, "malformed_json")
    elif case == "wrong_type":
        response = await hooks.request(method, path, json=wrong, headers=editor.headers)
        expected = (422, "validation_failed")
    elif case == "unknown_field":
        response = await hooks.request(method, path, json={"colour": 1}, headers=editor.headers)
        expected = (422, "validation_failed")
    elif case == "huge":
        response = await hooks.request(method, path, json=HUGE, headers=editor.headers)
        expected = (413, "payload_too_large")
    else:
        text_headers = {**editor.headers, "Content-Type": "text/plain"}
        response = await hooks.request(method, path, data=b"{}", headers=text_headers)
        expected = (415, "unsupported_media_type")

    await assert_problem(response, *expected)
    after = stored(pgsql, created["id"])
    assert after["secret"] == created["secret"]
    assert after["active"] is True
    assert count_rows(pgsql, "webhook_events") == 1
    await hook.stays_at(1, wait=0.1)
