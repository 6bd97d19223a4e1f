"""Accepted telemetry batches: every reading stored as sent, converted by the profile valid at its
own timestamp, attached to a run and capture session (or late, or refused), batch ids that make
resends harmless, and the heartbeats that tell the experiment API a sensor is online."""

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from telemetry_ingest_service.app import create_app as create_ingest_app
from tests.experiment.factories import (
    create_experiment,
    expect,
    set_run_status,
    start_capture,
)
from tests.plugins.waiting import eventually
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import (
    accepted,
    all_ingest_errors,
    batch,
    bound_run,
    create_sensor,
    get_sensor,
    linear,
    polynomial,
    publish_profile,
    reading,
    readings_at,
    rotate_token,
    send,
    stored_batches,
    stored_records,
)

SECOND = timedelta(seconds=1)


def instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def conversions(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["conversion_status"], r["physical_value"], r["profile_id"]) for r in rows]


@pytest.fixture
async def experiment(api, owner, project_id):
    return await create_experiment(api, owner, project_id)


@pytest.fixture
async def sensor(api, owner, project_id):
    return await create_sensor(api, owner, project_id)


# --- what is stored ------------------------------------------------------------------------------


async def test_accepted_batch_stores_every_reading_as_sent(
    api, ingest, owner, project_id, experiment, clock, pgsql
):
    sensor = await create_sensor(api, owner, project_id, profile=linear(2.0, 1.0))
    run = await bound_run(api, owner, experiment, sensor)
    session = await start_capture(api, owner, run["id"])
    start = clock.now
    clock.advance(61.5)
    plus_two = timezone(timedelta(hours=2))
    body = batch(
        sensor,
        [
            reading(start + SECOND, 1.5, meta={"signal": "temperature", "channel": 3}),
            reading((start + 2 * SECOND).astimezone(plus_two), -4),
            reading(start + 3 * SECOND, 0.25, meta={"note": "after reset"}),
        ],
        batch_id="rig-a/000001",
        meta={"rig": "A"},
    )

    answer = await accepted(ingest, sensor["token"], body)

    assert answer == {
        "accepted": 3,
        "late": 0,
        "converted": 3,
        "no_profile": 0,
        "conversion_errors": 0,
        "run_id": run["id"],
        "capture_session_id": session["id"],
        "duplicate": False,
        "spooled": False,
    }
    (stored_batch,) = stored_batches(pgsql, sensor["id"])
    assert stored_batch == {
        "id": stored_batch["id"],
        "sensor_id": sensor["id"],
        "client_batch_id": "rig-a/000001",
        "run_id": run["id"],
        "capture_session_id": session["id"],
        "readings": 3,
        "first_timestamp": start + SECOND,
        "last_timestamp": start + 3 * SECOND,
        "received_at": clock.now,
        "spooled": False,
    }
    common = {
        "batch_id": stored_batch["id"],
        "sensor_id": sensor["id"],
        "run_id": run["id"],
        "capture_session_id": session["id"],
        "received_at": clock.now,
        "conversion_status": "ok",
        "profile_id": sensor["active_profile_id"],
        "late": False,
    }
    assert stored_records(pgsql, sensor["id"]) == [
        {
            **common,
            "seq": 0,
            "timestamp": start + SECOND,
            "raw_value": 1.5,
            "physical_value": 4.0,
            "meta": {"rig": "A", "signal": "temperature", "channel": 3},
            "signal": "temperature",
        },
        {
            **common,
            "seq": 1,
            "timestamp": start + 2 * SECOND,
            "raw_value": -4.0,
            "physical_value": -7.0,
            "meta": {"rig": "A"},
            "signal": "value",
        },
        {
            **common,
            "seq": 2,
            "timestamp": start + 3 * SECOND,
            "raw_value": 0.25,
            "physical_value": 1.5,
            "meta": {"rig": "A", "note": "after reset"},
            "signal": "value",
        },
    ]


async def test_reading_meta_overrides_batch_meta_key_by_key(ingest, sensor, clock, pgsql):
    body = batch(
        sensor,
        [
            reading(clock.now, 1, meta={"signal": "pressure", "port": 2}),
            reading(clock.now, 2),
            reading(clock.now, 3, meta={"rig": "B"}),
        ],
        meta={"signal": "temperature", "rig": "A"},
    )

    await accepted(ingest, sensor["token"], body)

    rows = stored_records(pgsql, sensor["id"])
    assert [(r["meta"], r["signal"]) for r in rows] == [
        ({"signal": "pressure", "rig": "A", "port": 2}, "pressure"),
        ({"signal": "temperature", "rig": "A"}, "temperature"),
        ({"signal": "temperature", "rig": "B"}, "temperature"),
    ]


async def test_readings_without_meta_store_none_and_the_default_signal(
    ingest, sensor, clock, pgsql
):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1.0, 2.0)))

    rows = stored_records(pgsql, sensor["id"])
    assert [(r["meta"], r["signal"]) for r in rows] == [(None, "value"), (None, "value")]


async def test_each_batch_is_stored_under_its_own_batch_row(ingest, sensor, clock, pgsql):
    first = await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1, 2)))
    clock.advance(5)
    second = await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 3)))

    assert (first["accepted"], second["accepted"]) == (2, 1)
    batches = stored_batches(pgsql, sensor["id"])
    assert [(b["readings"], b["client_batch_id"]) for b in batches] == [(2, None), (1, None)]
    rows = stored_records(pgsql, sensor["id"])
    assert [(r["batch_id"], r["seq"], r["raw_value"]) for r in rows] == [
        (batches[0]["id"], 0, 1.0),
        (batches[0]["id"], 1, 2.0),
        (batches[1]["id"], 0, 3.0),
    ]
    received = {b["id"]: b["received_at"] for b in batches}
    assert [r["received_at"] for r in rows] == [received[r["batch_id"]] for r in rows]
    assert received[batches[1]["id"]] - received[batches[0]["id"]] == 5 * SECOND


# --- conversion ----------------------------------------------------------------------------------


async def test_batch_spanning_a_profile_switch_gets_both_profiles(
    api, ingest, owner, project_id, clock, pgsql
):
    first_start = clock.now
    sensor = await create_sensor(api, owner, project_id, profile=linear(2.0))
    first_id = sensor["active_profile_id"]
    clock.advance(100)
    second = await publish_profile(api, owner, sensor["id"], linear(10.0, 1.0, version="v2"))
    switch = instant(second["valid_from"])
    assert switch == clock.now
    clock.advance(100)
    micro = timedelta(microseconds=1)
    body = batch(
        sensor,
        [
            reading(first_start - micro, 1.0),
            reading(first_start, 1.0),
            reading(switch - micro, 1.0),
            reading(switch, 1.0),
            reading(switch + 50 * SECOND, 2.0),
        ],
    )

    answer = await accepted(ingest, sensor["token"], body)

    assert (answer["converted"], answer["no_profile"], answer["conversion_errors"]) == (4, 1, 0)
    assert conversions(stored_records(pgsql, sensor["id"])) == [
        ("no_profile", None, None),
        ("ok", 2.0, first_id),
        ("ok", 2.0, first_id),
        ("ok", 11.0, second["id"]),
        ("ok", 21.0, second["id"]),
    ]


async def test_batch_after_a_switch_uses_only_the_new_profile(
    api, ingest, owner, project_id, clock, pgsql
):
    sensor = await create_sensor(api, owner, project_id, profile=linear(2.0))
    clock.advance(100)
    second = await publish_profile(api, owner, sensor["id"], linear(-1.0, version="v2"))
    switch = clock.now
    clock.advance(100)

    answer = await accepted(ingest, sensor["token"], batch(sensor, readings_at(switch, 1, 2, 3)))

    assert answer["converted"] == 3
    assert conversions(stored_records(pgsql, sensor["id"])) == [
        ("ok", -1.0, second["id"]),
        ("ok", -2.0, second["id"]),
        ("ok", -3.0, second["id"]),
    ]


async def test_scheduled_profile_converts_readings_from_its_start(
    api, ingest, owner, project_id, clock, pgsql
):
    sensor = await create_sensor(api, owner, project_id, profile=linear(2.0))
    url = f"/api/v1/sensors/{sensor['id']}/conversion-profiles"
    draft = await expect(
        await api.post(url, json=linear(3.0, version="v2"), headers=owner.headers), 201
    )
    start = clock.now + 100 * SECOND
    response = await api.post(
        f"{url}/{draft['id']}/schedule",
        json={"valid_from": start.isoformat()},
        headers=owner.headers,
    )
    await expect(response, 200)
    # Readings may be a little ahead of the server (max_future_seconds, 300 s by default).
    body = batch(sensor, [reading(start - SECOND, 1.0), reading(start + SECOND, 1.0)])

    await accepted(ingest, sensor["token"], body)

    assert conversions(stored_records(pgsql, sensor["id"])) == [
        ("ok", 2.0, sensor["active_profile_id"]),
        ("ok", 3.0, draft["id"]),
    ]


async def test_readings_after_a_deprecation_have_no_profile(
    api, ingest, owner, project_id, clock, pgsql
):
    start = clock.now
    sensor = await create_sensor(api, owner, project_id, profile=linear(2.0))
    clock.advance(10)
    response = await api.post(
        f"/api/v1/sensors/{sensor['id']}/conversion-profiles/{sensor['active_profile_id']}"
        "/deprecate",
        json={},
        headers=owner.headers,
    )
    await expect(response, 200)
    end = clock.now

    answer = await accepted(
        ingest, sensor["token"], batch(sensor, [reading(start, 1), reading(end, 1)])
    )

    assert (answer["converted"], answer["no_profile"]) == (1, 1)
    assert conversions(stored_records(pgsql, sensor["id"])) == [
        ("ok", 2.0, sensor["active_profile_id"]),
        ("no_profile", None, None),
    ]


async def test_readings_of_a_sensor_without_profile_keep_only_the_raw_value(
    ingest, sensor, clock, pgsql
):
    answer = await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 5, 6)))

    assert (answer["converted"], answer["no_profile"], answer["conversion_errors"]) == (0, 2, 0)
    rows = stored_records(pgsql, sensor["id"])
    assert conversions(rows) == [("no_profile", None, None)] * 2
    assert [r["raw_value"] for r in rows] == [5.0, 6.0]


async def test_draft_profile_converts_nothing(api, ingest, owner, sensor, clock, pgsql):
    url = f"/api/v1/sensors/{sensor['id']}/conversion-profiles"
    await expect(await api.post(url, json=linear(2.0), headers=owner.headers), 201)

    answer = await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    assert answer["no_profile"] == 1
    assert conversions(stored_records(pgsql, sensor["id"])) == [("no_profile", None, None)]


@pytest.mark.parametrize("profile", [polynomial(0.0, 0.0, 1.0), linear(1e300)])
async def test_conversion_overflow_is_stored_as_error(
    api, ingest, owner, project_id, clock, pgsql, profile
):
    sensor = await create_sensor(api, owner, project_id, profile=profile)
    profile_id = sensor["active_profile_id"]

    answer = await accepted(
        ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1e300, 3.0, -1e300))
    )

    assert answer["accepted"] == 3
    assert (answer["converted"], answer["no_profile"], answer["conversion_errors"]) == (1, 0, 2)
    rows = stored_records(pgsql, sensor["id"])
    assert [r["raw_value"] for r in rows] == [1e300, 3.0, -1e300]
    physical = 9.0 if profile["kind"] == "polynomial" else 3e300
    assert conversions(rows) == [
        ("error", None, profile_id),
        ("ok", physical, profile_id),
        ("error", None, profile_id),
    ]


async def test_conversion_overflow_across_a_profile_switch_is_an_error_per_reading(
    api, ingest, owner, project_id, clock, pgsql
):
    sensor = await create_sensor(api, owner, project_id, profile=linear(1.0))
    clock.advance(10)
    second = await publish_profile(api, owner, sensor["id"], polynomial(0, 0, 1, version="v2"))
    switch = clock.now

    readings = [reading(switch - SECOND, 1e300), *readings_at(switch, 1e300, 2)]

    answer = await accepted(ingest, sensor["token"], batch(sensor, readings))

    assert (answer["converted"], answer["conversion_errors"]) == (2, 1)
    assert conversions(stored_records(pgsql, sensor["id"])) == [
        ("ok", 1e300, sensor["active_profile_id"]),
        ("error", None, second["id"]),
        ("ok", 4.0, second["id"]),
    ]


# --- batch ids -----------------------------------------------------------------------------------


async def test_resent_batch_id_is_a_duplicate_stored_once(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    run = await bound_run(api, owner, experiment, sensor)
    body = batch(sensor, readings_at(clock.now, 1, 2, 3), batch_id="b-17", run_id=run["id"])
    first = await accepted(ingest, sensor["token"], body)
    clock.advance(30)

    again = await accepted(ingest, sensor["token"], body)

    assert (first["duplicate"], first["accepted"]) == (False, 3)
    assert again["duplicate"] is True
    assert again["accepted"] == 3
    (stored,) = stored_batches(pgsql, sensor["id"])
    assert stored["client_batch_id"] == "b-17"
    rows = stored_records(pgsql, sensor["id"])
    assert [r["raw_value"] for r in rows] == [1.0, 2.0, 3.0]
    assert {r["received_at"] for r in rows} == {clock.now - 30 * SECOND}


async def test_duplicate_is_found_by_batch_id_not_by_content(ingest, sensor, clock, pgsql):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1), batch_id="x"))

    again = await accepted(
        ingest, sensor["token"], batch(sensor, readings_at(clock.now, 7, 8), batch_id="x")
    )

    assert again["duplicate"] is True
    assert [r["raw_value"] for r in stored_records(pgsql, sensor["id"])] == [1.0]


async def test_same_batch_id_from_another_sensor_is_another_batch(
    api, ingest, owner, project_id, sensor, clock, pgsql
):
    other = await create_sensor(api, owner, project_id)
    for each in (sensor, other):
        answer = await accepted(
            ingest, each["token"], batch(each, readings_at(clock.now, 1, 2), batch_id="shared")
        )
        assert answer["duplicate"] is False

    for each in (sensor, other):
        (stored,) = stored_batches(pgsql, each["id"])
        assert stored["client_batch_id"] == "shared"
        assert len(stored_records(pgsql, each["id"])) == 2


async def test_batches_without_batch_id_are_never_duplicates(ingest, sensor, clock, pgsql):
    body = batch(sensor, readings_at(clock.now, 1))
    answers = [await accepted(ingest, sensor["token"], body) for _ in range(2)]

    assert [a["duplicate"] for a in answers] == [False, False]
    assert len(stored_batches(pgsql, sensor["id"])) == 2
    assert len(stored_records(pgsql, sensor["id"])) == 2


async def test_resend_after_the_run_is_archived_is_still_a_duplicate(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    run = await bound_run(api, owner, experiment, sensor, "succeeded")
    body = batch(sensor, readings_at(clock.now, 1), batch_id="b-1", run_id=run["id"])
    await accepted(ingest, sensor["token"], body)
    await set_run_status(api, owner, run["id"], "archived")

    again = await send(ingest, sensor["token"], body)

    assert again.status == 202, await again.text()
    assert (await again.json())["duplicate"] is True
    assert await all_ingest_errors(api, owner, sensor["id"]) == []


# --- heartbeats ----------------------------------------------------------------------------------


@pytest.fixture
async def fast_ingest(pgsql, aiohttp_client, ingest_settings, clock):
    """Telemetry ingest writing heartbeats every 50 ms."""
    return await aiohttp_client(
        create_ingest_app(ingest_settings(heartbeat_interval=0.05), clock=clock)
    )


async def online(api, user, sensor_id) -> dict[str, Any] | None:
    current = await get_sensor(api, user, sensor_id)
    return current if current["status"] == "online" else None


async def test_accepted_batch_marks_the_sensor_online_and_its_token_used(
    api, fast_ingest, owner, sensor, clock
):
    assert sensor["status"] == "never_seen"
    assert sensor["token_last_used_at"] is None
    clock.advance(42)

    await accepted(fast_ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))
    current = await eventually(lambda: online(api, owner, sensor["id"]))

    assert instant(current["last_heartbeat"]) == clock.now
    assert instant(current["token_last_used_at"]) == clock.now
    # Heartbeats are not edits.
    assert current["updated_at"] == sensor["updated_at"]
    assert current["token_preview"] == sensor["token_preview"]


async def test_heartbeat_follows_the_latest_batch(api, fast_ingest, owner, sensor, clock):
    await accepted(fast_ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))
    await eventually(lambda: online(api, owner, sensor["id"]))
    clock.advance(7)
    latest = clock.now

    await accepted(fast_ingest, sensor["token"], batch(sensor, readings_at(clock.now, 2)))

    async def heard_latest():
        current = await get_sensor(api, owner, sensor["id"])
        return current if instant(current["last_heartbeat"]) == latest else None

    current = await eventually(heard_latest)
    assert instant(current["token_last_used_at"]) == latest
    assert current["updated_at"] == sensor["updated_at"]


async def test_sensor_goes_delayed_then_offline_without_batches(
    api, fast_ingest, owner, sensor, clock
):
    await accepted(fast_ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))
    await eventually(lambda: online(api, owner, sensor["id"]))

    clock.advance(30)
    assert (await get_sensor(api, owner, sensor["id"]))["status"] == "delayed"
    clock.advance(60)
    assert (await get_sensor(api, owner, sensor["id"]))["status"] == "offline"


async def test_refused_batch_is_not_a_heartbeat(api, fast_ingest, owner, project_id, clock):
    refused_sensor = await create_sensor(api, owner, project_id)
    heard = await create_sensor(api, owner, project_id)
    response = await send(fast_ingest, refused_sensor["token"], batch(refused_sensor, []))
    await assert_problem(response, 422, "validation_failed")

    # Both would be written by the same flush, or the refused one by an earlier one.
    await accepted(fast_ingest, heard["token"], batch(heard, readings_at(clock.now, 1)))
    await eventually(lambda: online(api, owner, heard["id"]))

    current = await get_sensor(api, owner, refused_sensor["id"])
    assert current["status"] == "never_seen"
    assert current["last_heartbeat"] is None
    assert current["token_last_used_at"] is None


async def test_grace_token_use_is_noted_on_the_grace_token(api, fast_ingest, owner, sensor, clock):
    rotated = await rotate_token(api, owner, sensor["id"], grace_seconds=3600)
    clock.advance(3)

    await accepted(fast_ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    async def grace_used():
        current = await get_sensor(api, owner, sensor["id"])
        used = current["grace_tokens"] and current["grace_tokens"][0]["last_used_at"]
        return current if used else None

    current = await eventually(grace_used)
    assert instant(current["grace_tokens"][0]["last_used_at"]) == clock.now
    assert instant(current["last_heartbeat"]) == clock.now
    assert current["token_preview"] == rotated["token_preview"]
    assert current["token_last_used_at"] is None
