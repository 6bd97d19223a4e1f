"""Trying a conversion on sample raw values before the profile exists: the answers per kind, the
checks of the body, who may do it, and that nothing is stored."""

import uuid

import pytest

from tests.experiment.factories import audit_count, expect, share_sensor
from tests.experiment.profile_kit import create_sensor, profile_rows, profiles_url
from tests.problems import assert_problem

TABLE = {"points": [{"x": 0, "y": 0}, {"x": 1, "y": 240}, {"x": 2, "y": 510}]}


@pytest.fixture
async def sensor(client, editor, project_id):
    return await create_sensor(client, editor, project_id)


def preview(client, user, sensor_id, body):
    return client.post(profiles_url(sensor_id) + ":preview", json=body, headers=user.headers)


@pytest.mark.parametrize(
    ("kind", "payload", "raw", "physical"),
    [
        ("linear", {"a": 2.5, "b": -1}, [0, 4, -2], [-1.0, 9.0, -6.0]),
        ("polynomial", {"coefficients": [1, 0, 2]}, [0, 3, -1.5], [1.0, 19.0, 5.5]),
        ("table", TABLE, [0.5, 1.5, -1, 3], [120.0, 375.0, 0.0, 510.0]),  # clamped outside
        ("table", {**TABLE, "extrapolate": True}, [3, -1], [780.0, -240.0]),
    ],
)
async def test_preview_converts_each_value_in_order(
    client, editor, sensor, kind, payload, raw, physical
):
    body = {"kind": kind, "payload": payload, "raw_values": raw}
    answer = await expect(await preview(client, editor, sensor["id"], body), 200)
    assert answer["items"] == [
        {"raw_value": float(r), "physical_value": p, "error": None}
        for r, p in zip(raw, physical, strict=True)
    ]


async def test_a_value_without_a_finite_physical_value_says_why(client, editor, sensor):
    body = {
        "kind": "polynomial",
        "payload": {"coefficients": [0, 0, 0, 0, 0, 1]},
        "raw_values": [2, 1e300],
    }
    (fine, overflow) = (await expect(await preview(client, editor, sensor["id"], body), 200))[
        "items"
    ]
    assert fine == {"raw_value": 2.0, "physical_value": 32.0, "error": None}
    assert overflow["physical_value"] is None
    assert "out of range" in overflow["error"]


async def test_preview_stores_nothing(client, editor, sensor, pgsql):
    before, audited = profile_rows(pgsql, sensor["id"]), audit_count(pgsql)
    body = {"kind": "linear", "payload": {"a": 1}, "raw_values": [1]}
    await expect(await preview(client, editor, sensor["id"], body), 200)
    assert profile_rows(pgsql, sensor["id"]) == before
    assert audit_count(pgsql) == audited


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "linear", "payload": {"b": 1}, "raw_values": [1]}, "payload.a"),
        ({"kind": "table", "payload": {"points": [{"x": 1, "y": 1}]}, "raw_values": [1]},
         "payload.points"),
        ({"kind": "spline", "payload": {}, "raw_values": [1]}, "kind"),
        ({"kind": "linear", "payload": {"a": 1}, "raw_values": []}, "raw_values"),
        ({"kind": "linear", "payload": {"a": 1}, "raw_values": [0] * 1001}, "raw_values"),
        ({"kind": "linear", "payload": {"a": 1}, "raw_values": ["1"]}, "raw_values.0"),
        ({"kind": "linear", "payload": {"a": 1}}, "raw_values"),
        ({"kind": "linear", "payload": {"a": 1}, "raw_values": [1], "version": "v1"}, "version"),
    ],
    ids=["payload", "table", "kind", "empty", "too-many", "string", "missing", "unknown-field"],
)  # fmt: skip
async def test_a_bad_body_is_refused_naming_the_field(client, editor, sensor, body, field):
    problem = await assert_problem(
        await preview(client, editor, sensor["id"], body), 422, "validation_failed"
    )
    assert field in {error["field"] for error in problem["errors"]}, problem


async def test_malformed_json_is_refused(client, editor, sensor):
    response = await client.post(
        profiles_url(sensor["id"]) + ":preview",
        data=b'{"kind": "linear",',
        headers={**editor.headers, "Content-Type": "application/json"},
    )
    await assert_problem(response, 400, "malformed_json")


LINEAR = {"kind": "linear", "payload": {"a": 1}, "raw_values": [1]}


async def test_a_viewer_and_a_sharing_project_may_not_preview(
    client, auth_stub, owner, project_id, sensor
):
    viewer = auth_stub.member(project_id, "viewer")
    await assert_problem(await preview(client, viewer, sensor["id"], LINEAR), 403, "forbidden")
    shared = await share_sensor(client, auth_stub, owner, sensor)
    editor_elsewhere = auth_stub.member(shared, "editor")
    response = await preview(client, editor_elsewhere, sensor["id"], LINEAR)
    await assert_problem(response, 403, "forbidden")


async def test_a_stranger_or_no_token_sees_no_sensor(client, auth_stub, sensor):
    stranger = auth_stub.member(uuid.uuid4(), "owner")
    response = await preview(client, stranger, sensor["id"], LINEAR)
    await assert_problem(response, 404, "sensor_not_found")
    response = await client.post(profiles_url(sensor["id"]) + ":preview", json=LINEAR)
    await assert_problem(response, 401, "unauthorized")
