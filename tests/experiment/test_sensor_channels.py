"""The channels a multi-channel sensor declares (`channels: [{name, unit}]`): set on creation,
replaced by an update, shown in every sensor answer and stored; names distinct, well formed
and at most 32 of them."""

import pytest

from tests.experiment.factories import audit_count, audit_rows, expect
from tests.experiment.sensor_kit import (
    SENSORS,
    count,
    create_sensor,
    get_sensor,
    list_sensors,
    sensor_body,
    sensor_row,
    sensor_state,
    sensor_url,
)
from tests.problems import assert_problem

TWO = [{"name": "temperature", "unit": "degC"}, {"name": "rel.humidity", "unit": None}]


async def test_create_with_channels_shows_and_stores_them(client, editor, project_id, pgsql):
    sensor = await create_sensor(
        client, editor, project_id, channels=[TWO[0], {"name": "rel.humidity"}]
    )

    assert sensor["channels"] == TWO
    assert sensor_row(pgsql, sensor["id"])["channels"] == TWO
    assert (await get_sensor(client, editor, sensor["id"]))["channels"] == TWO
    listed = await list_sensors(client, editor, project_id)
    assert [item["channels"] for item in listed["items"]] == [TWO]


async def test_a_sensor_without_channels_declares_none(client, editor, project_id, pgsql):
    sensor = await create_sensor(client, editor, project_id)

    assert sensor["channels"] == []
    assert sensor_row(pgsql, sensor["id"])["channels"] == []


async def test_patch_replaces_the_channels_and_audits_them(
    client, owner, editor, project_id, pgsql
):
    sensor = await create_sensor(client, owner, project_id, channels=TWO)

    response = await client.patch(
        sensor_url(sensor["id"]),
        json={"channels": [{"name": "pressure", "unit": "Pa"}]},
        headers=editor.headers,
    )

    updated = await expect(response, 200)
    assert updated["channels"] == [{"name": "pressure", "unit": "Pa"}]
    assert updated["updated_at"] > sensor["updated_at"]
    assert sensor_row(pgsql, sensor["id"])["channels"] == [{"name": "pressure", "unit": "Pa"}]
    entry = audit_rows(pgsql, sensor["id"])[-1]
    assert entry["action"] == "sensor.updated"
    assert entry["before"] == {"channels": TWO}
    assert entry["after"] == {"channels": [{"name": "pressure", "unit": "Pa"}]}

    cleared = await client.patch(
        sensor_url(sensor["id"]), json={"channels": []}, headers=editor.headers
    )
    assert (await expect(cleared, 200))["channels"] == []
    assert sensor_row(pgsql, sensor["id"])["channels"] == []


BAD_CHANNELS = [
    ([{"name": "a"}, {"name": "b"}, {"name": "a", "unit": "V"}], "channels"),
    ([{"name": ""}], "channels.0.name"),
    ([{"name": "x" * 65}], "channels.0.name"),
    ([{"name": "two words"}], "channels.0.name"),
    ([{"name": "tab\there"}], "channels.0.name"),
    ([{"name": "é"}], "channels.0.name"),
    ([{"name": 5}], "channels.0.name"),
    ([{"unit": "V"}], "channels.0.name"),
    ([{"name": "a", "unit": ""}], "channels.0.unit"),
    ([{"name": "a", "unit": "u" * 51}], "channels.0.unit"),
    ([{"name": "a", "colour": "red"}], "channels.0.colour"),
    (["a"], "channels.0"),
    ({"name": "a"}, "channels"),
    ([{"name": f"c{i}"} for i in range(33)], "channels"),
]


@pytest.mark.parametrize(("channels", "field"), BAD_CHANNELS)
async def test_create_with_bad_channels_names_the_field_and_stores_nothing(
    client, editor, project_id, pgsql, channels, field
):
    body = sensor_body(project_id, channels=channels)

    response = await client.post(SENSORS, json=body, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == [field], problem
    assert count(pgsql, "sensors") == 0
    assert audit_count(pgsql) == 0


@pytest.mark.parametrize(("channels", "field"), [*BAD_CHANNELS, (None, "")])
async def test_patch_with_bad_channels_changes_nothing(
    client, editor, project_id, pgsql, channels, field
):
    sensor = await create_sensor(client, editor, project_id, channels=TWO)
    before = sensor_state(pgsql, sensor["id"])

    response = await client.patch(
        sensor_url(sensor["id"]), json={"channels": channels}, headers=editor.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == [field], problem
    assert sensor_state(pgsql, sensor["id"]) == before


async def test_duplicate_names_are_named_in_the_answer(client, editor, project_id):
    body = sensor_body(project_id, channels=[{"name": "a"}, {"name": "b"}, {"name": "a"}])

    problem = await assert_problem(
        await client.post(SENSORS, json=body, headers=editor.headers), 422, "validation_failed"
    )

    assert "a repeated" in problem["errors"][0]["message"]


async def test_thirty_two_channels_are_fine(client, editor, project_id):
    channels = [{"name": f"ch-{i:02d}", "unit": "V"} for i in range(32)]

    sensor = await create_sensor(client, editor, project_id, channels=channels)

    assert sensor["channels"] == channels
