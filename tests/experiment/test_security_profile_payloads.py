"""Under a project's `physical_only` policy its viewers see physical values only, and a
conversion profile's payload would give them the raw values back exactly (raw = (physical - b) /
a): it is null for them in profile answers and audit entries, and left out of the project's
`conversion_profile.activated` webhooks. Editors, owners, and viewers of projects without the
policy read it."""

from datetime import timedelta

import pytest

from tests.experiment.factories import expect, share_sensor
from tests.experiment.webhook_kit import subscribe
from tests.plugins.roles import role_matrix

PAYLOAD = {"a": 250.137, "b": -12.5}
ACTIVATED = "conversion_profile.activated"
SENSORS = "/api/v1/sensors"


async def _sensor_with_profile(client, user, project_id) -> tuple[dict, str]:
    body = {
        "project_id": str(project_id), "name": "probe", "type": "pressure",
        "input_unit": "V", "display_unit": "Pa",
        "conversion_profile": {"version": "v1", "kind": "linear", "payload": PAYLOAD},
    }  # fmt: skip
    sensor = await expect(await client.post(SENSORS, json=body, headers=user.headers), 201)
    return sensor, f"{SENSORS}/{sensor['id']}/conversion-profiles"


def _payloads(route: str, body: dict) -> list:
    if route == "get_profile":
        return [body["payload"]]
    if route == "list_profiles":
        return [item["payload"] for item in body["items"]]
    return [
        values["payload"]
        for entry in body["items"]
        for values in (entry["before"], entry["after"])
        if values and "payload" in values
    ]


ROW = {"owner": PAYLOAD, "editor": PAYLOAD, "viewer": None, "stranger": 404}
MATRIX = {route: ROW for route in ("get_profile", "list_profiles", "project_audit")}


@role_matrix(MATRIX)
async def test_payload_is_hidden_from_viewers_under_physical_only(
    client, auth_stub, owner, project_id, caller_as, route, role, expected
):
    auth_stub.physical_only.add(project_id)
    _, profiles = await _sensor_with_profile(client, owner, project_id)
    draft = await expect(
        await client.post(
            profiles,
            json={"version": "v2", "kind": "linear", "payload": PAYLOAD},
            headers=owner.headers,
        ),
        201,
    )
    user = caller_as(role, project_id)
    path, params = {
        "get_profile": (f"{profiles}/{draft['id']}", {}),
        "list_profiles": (profiles, {}),
        "project_audit": (
            "/api/v1/audit",
            {"project_id": str(project_id), "entity_type": "conversion_profile"},
        ),
    }[route]

    response = await client.get(path, params=params, headers=user.headers)

    if expected == 404:
        assert response.status == 404, await response.text()
        return
    payloads = _payloads(route, await expect(response, 200))
    assert payloads, route
    assert payloads == [expected] * len(payloads)
    if expected is None:
        assert "250.137" not in await response.text()


async def test_viewer_sees_payload_without_the_policy_or_through_a_project_without_it(
    client, auth_stub, owner, viewer, project_id
):
    sensor, profiles = await _sensor_with_profile(client, owner, project_id)
    (shown,) = (await expect(await client.get(profiles, headers=viewer.headers), 200))["items"]
    assert shown["payload"] == PAYLOAD

    # A viewer in the (now) physical_only home project who also reads the sensor through a
    # project without the policy sees raw values there, so the payload too.
    auth_stub.physical_only.add(project_id)
    shared = await share_sensor(client, auth_stub, owner, sensor)
    other = auth_stub.member(project_id, "viewer")
    auth_stub.grant(other, shared, "viewer")
    (hidden,) = (await expect(await client.get(profiles, headers=viewer.headers), 200))["items"]
    (seen,) = (await expect(await client.get(profiles, headers=other.headers), 200))["items"]
    assert hidden["payload"] is None
    assert seen["payload"] == PAYLOAD


@pytest.mark.parametrize("physical_only", [True, False], ids=["physical_only", "raw_allowed"])
async def test_activation_webhooks_of_a_physical_only_project_carry_no_payload(
    hooks, clock, auth_stub, editor, owner, project_id, receiver, physical_only
):
    if physical_only:
        auth_stub.physical_only.add(project_id)
    hook = receiver()
    await subscribe(hooks, editor, project_id, hook.url, [ACTIVATED])
    _, profiles = await _sensor_with_profile(hooks, owner, project_id)
    later = await expect(
        await hooks.post(
            profiles,
            json={"version": "v2", "kind": "linear", "payload": PAYLOAD},
            headers=owner.headers,
        ),
        201,
    )
    await expect(
        await hooks.post(
            f"{profiles}/{later['id']}/schedule",
            json={"valid_from": (clock.now + timedelta(seconds=60)).isoformat()},
            headers=owner.headers,
        ),
        200,
    )

    (published,) = await hook.wait_for(1)
    clock.advance(61)
    _, scheduled = await hook.wait_for_events(2)  # a lease may run out under the jump

    expected = None if physical_only else PAYLOAD
    assert published.json["data"]["payload"] == expected
    assert scheduled.json["actor"] is None
    assert scheduled.json["data"]["id"] == later["id"]
    assert scheduled.json["data"]["payload"] == expected
