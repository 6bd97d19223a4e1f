"""A webhook's target URL often carries a secret, and receivers' answers may echo one: viewers
read a subscription's target as `scheme://host[:port]/…` (in the subscription, the list and the
audit log) and its deliveries without the bodies receivers answered; editors and owners read
everything."""

from typing import Any

from tests.experiment.factories import expect
from tests.experiment.webhook_kit import HOOKS, deliveries, hook_url, subscribe
from tests.plugins.roles import role_matrix
from tests.plugins.waiting import eventually

SECRET = "s3cret-token-7f1c"
WHOLE, OUTLINE = "whole", "outline"
ROW = {"owner": WHOLE, "editor": WHOLE, "viewer": OUTLINE, "stranger": 404}
MATRIX = {
    route: ROW for route in ("get_webhook", "list_webhooks", "list_deliveries", "project_audit")
}


def _path(route: str, webhook_id: str, project_id: Any) -> tuple[str, dict[str, str]]:
    return {
        "get_webhook": (hook_url(webhook_id), {}),
        "list_webhooks": (HOOKS, {"project_id": str(project_id)}),
        "list_deliveries": (f"{hook_url(webhook_id)}/deliveries", {}),
        "project_audit": (
            "/api/v1/audit",
            {"project_id": str(project_id), "entity_type": "webhook"},
        ),
    }[route]


def _target_urls(route: str, body: dict[str, Any]) -> list[str]:
    if route == "get_webhook":
        return [body["target_url"]]
    if route == "list_webhooks":
        return [item["target_url"] for item in body["items"]]
    if route == "project_audit":
        return [
            values["target_url"]
            for entry in body["items"]
            for values in (entry["before"], entry["after"])
            if values and "target_url" in values
        ]
    return []


@role_matrix(MATRIX)
async def test_viewers_read_targets_in_outline_and_no_receiver_answers(
    hooks,
    mockserver,
    mockserver_host,
    editor,
    project_id,
    receiver,
    caller_as,
    route,
    role,
    expected,
):
    async def echo(call):
        return mockserver.make_response(f"accepted {SECRET}", status=200)

    hook = receiver(answers=[echo])
    url = f"{hook.url}?token={SECRET}"
    created = await subscribe(hooks, editor, project_id, url, ["run.created"])
    await expect(
        await hooks.patch(
            hook_url(created["id"]), json={"target_url": url + "&v=2"}, headers=editor.headers
        ),
        200,
    )
    await expect(await hooks.post(f"{hook_url(created['id'])}/ping", headers=editor.headers), 202)
    await hook.wait_for(1)
    await eventually(lambda: deliveries(hooks, editor, created["id"], status="delivered"))
    user = caller_as(role, project_id)
    path, params = _path(route, created["id"], project_id)

    response = await hooks.get(path, params=params, headers=user.headers)

    if expected == 404:
        assert response.status == 404, await response.text()
        return
    body = await expect(response, 200)
    text = await response.text()
    urls = _target_urls(route, body)
    attempts = (
        [a for d in body["items"] for a in d["attempt_log"]] if route == "list_deliveries" else []
    )
    if expected == WHOLE:
        assert SECRET in text
        assert all(SECRET in u for u in urls), urls
        assert [a["response_body"] for a in attempts] == [f"accepted {SECRET}"] * len(attempts)
    else:
        assert SECRET not in text, text
        assert set(urls) <= {f"http://{mockserver_host}/…"}, urls
        assert [a["response_body"] for a in attempts] == [None] * len(attempts)
    if route == "project_audit":
        # created, updated (before and after): three URLs in all.
        assert len(urls) == 3, body
    elif route != "list_deliveries":
        assert len(urls) == 1, body
    else:
        assert len(attempts) == 1, body
