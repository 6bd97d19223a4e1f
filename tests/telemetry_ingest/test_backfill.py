"""Backfill: a conversion profile published for a past start (`publish?backfill=true`) and the
stored readings of its validity converted again by the telemetry job, in chunks, with the
progress at `GET /api/v1/backfills/{id}` and the announcement (audit, webhook) once done."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import asyncpg
import pytest

from experiment_service.app import create_app as create_experiment_app
from telemetry_ingest_service.domain.backfills import slice_bounds
from tests.experiment.factories import (
    audit_rows,
    create_experiment,
    create_run_in_status,
    expect,
    start_capture,
)
from tests.plugins.waiting import eventually
from tests.problems import assert_problem
from tests.telemetry_ingest.backfill_kit import (
    SENSORS,
    announce,
    backfill_publish,
    backfill_request,
    conversions,
    events_of,
    get_backfill,
    run_backfills,
)
from tests.telemetry_ingest.ingest_api import (
    accepted,
    batch,
    bind,
    create_sensor,
    linear,
    publish_profile,
    reading,
    readings_at,
    stop_capture,
)

SECOND = timedelta(seconds=1)


@pytest.fixture
async def api(pgsql, aiohttp_client, make_settings, clock, mockserver_info):
    """The experiment service, whose webhooks may target the mockserver."""
    host = urlsplit(mockserver_info.base_url).netloc
    settings = make_settings("experiment", webhook_allowed_hosts=(host,))
    return await aiohttp_client(create_experiment_app(settings, clock=clock))


@pytest.fixture
async def ingest(pgsql, ingest_app):
    """Ingest converting two readings per backfill chunk (several chunks in every test)."""
    return await ingest_app(backfill_chunk=2)


@pytest.fixture
async def timeline(api, ingest, owner, project_id, clock):
    """A sensor with profile A (x2) from t0 and C (x100) from t0 + 1000 s, readings at t0 - 60
    (no profile), t0 + 5, 10, 20, 500, 999 (A) and t0 + 1000, 1010 (C); the clock an hour on."""
    t0 = clock.now
    sensor = await create_sensor(api, owner, project_id, profile=linear(2.0))
    clock.advance(1000)
    c = await publish_profile(api, owner, sensor["id"], linear(100.0, version="c"))
    offsets = (-60, 5, 10, 20, 500, 999, 1000, 1010)
    body = batch(sensor, [reading(t0 + offset * SECOND, 1.0) for offset in offsets])
    await accepted(ingest, sensor["token"], body)
    clock.advance(3600)
    return {"t0": t0, "sensor": sensor, "a": sensor["active_profile_id"], "c": c["id"]}


def at(timeline, offset: float) -> datetime:
    return timeline["t0"] + offset * SECOND


async def test_backfill_converts_the_readings_of_the_new_validity_only(
    api, ingest, owner, viewer, timeline, pgsql, clock
):
    sensor_id, a, c = timeline["sensor"]["id"], timeline["a"], timeline["c"]

    published = await backfill_publish(
        api, owner, sensor_id, linear(10.0, 1.0, version="b"), at(timeline, 15)
    )

    b = published["id"]
    assert published["valid_from"] == at(timeline, 15).isoformat().replace("+00:00", "Z")
    assert published["valid_to"] == at(timeline, 1000).isoformat().replace("+00:00", "Z")
    progress = await get_backfill(api, viewer, published["backfill_id"])
    assert (progress["status"], progress["rows_total"], progress["rows_done"]) == ("running", 3, 0)
    assert (progress["profile_id"], progress["sensor_id"]) == (b, sensor_id)

    assert await run_backfills(ingest, clock) == {"finished": 1, "readings": 3}

    assert [row[1:] for row in conversions(pgsql, sensor_id)] == [
        ("no_profile", None, None),
        ("ok", 2.0, a),
        ("ok", 2.0, a),
        ("ok", 11.0, b),
        ("ok", 11.0, b),
        ("ok", 11.0, b),
        ("ok", 100.0, c),
        ("ok", 100.0, c),
    ]
    done = await get_backfill(api, viewer, published["backfill_id"])
    assert (done["status"], done["rows_total"], done["rows_done"]) == ("succeeded", 3, 3)
    assert done["finished_at"] is not None
    assert done["eta_seconds"] is None


async def test_a_long_backfill_is_cut_into_slices_that_two_lanes_convert_once(
    api, ingest_app, owner, viewer, project_id, pgsql, clock
):
    """Two readings a chunk and 95 readings: five slices (about ten chunks each), converted by
    two lanes at once, each reading once, by the profile of its time; the last slice to finish
    ends the backfill."""
    ingest = await ingest_app(backfill_chunk=2, backfill_lanes=2)
    t0 = clock.now
    sensor = await create_sensor(api, owner, project_id, profile=linear(2.0))
    values = [float(n) for n in range(96)]
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(t0, *values, step=1.0)))
    clock.advance(3600)

    published = await backfill_publish(
        api, owner, sensor["id"], linear(10.0, 1.0, version="b"), t0 + SECOND
    )

    assert await run_backfills(ingest, clock) == {"finished": 1, "readings": 95}
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT range_from, range_to, finished FROM conversion_backfill_slices"
            " WHERE backfill_id = %s ORDER BY slice",
            (published["backfill_id"],),
        )
        cut = cursor.fetchall()
    assert len(cut) == 5
    assert cut[0][0] == t0 + SECOND
    assert cut[-1][1] is None  # open-ended: the new profile is the sensor's last
    assert [start for start, _, _ in cut[1:]] == [end for _, end, _ in cut[:-1]]
    assert all(finished for _, _, finished in cut)
    a = sensor["active_profile_id"]
    assert [row[1:] for row in conversions(pgsql, sensor["id"])] == [("ok", 0.0, a)] + [
        ("ok", 10.0 * value + 1.0, published["id"]) for value in values[1:]
    ]
    done = await get_backfill(api, viewer, published["backfill_id"])
    assert (done["status"], done["rows_total"], done["rows_done"]) == ("succeeded", 95, 95)


def test_slice_bounds_split_the_readings_time_evenly():
    first = datetime(2026, 1, 1, tzinfo=UTC)
    assert slice_bounds(first, first + 4 * SECOND, 4) == [first + n * SECOND for n in (1, 2, 3)]
    assert slice_bounds(first, first + 4 * SECOND, 1) == []
    assert slice_bounds(first, first, 4) == []
    assert slice_bounds(None, None, 4) == []
    assert len(slice_bounds(first, first + 1000 * SECOND, 1000)) == 99  # at most 100 slices


async def test_the_touched_minutes_are_queued_for_the_rollup(
    api, ingest, owner, timeline, pgsql, clock
):
    sensor_id = timeline["sensor"]["id"]
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("DELETE FROM telemetry_rollup_pending")

    await backfill_publish(api, owner, sensor_id, linear(10.0, version="b"), at(timeline, 15))
    await run_backfills(ingest, clock)

    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT min(first_minute), max(last_minute) FROM telemetry_rollup_pending"
            " WHERE sensor_id = %s",
            (sensor_id,),
        )
        first, last = cursor.fetchone()
    assert first <= at(timeline, 20)
    assert last >= at(timeline, 999) - 60 * SECOND


async def test_the_finished_backfill_is_audited_and_announced_once(
    api, ingest, owner, timeline, pgsql, project_id, clock, mockserver_info
):
    sensor_id = timeline["sensor"]["id"]
    subscription = {
        "project_id": str(project_id),
        "target_url": mockserver_info.url("hooks/backfills"),
        "event_types": ["capture.backfill.finished"],
    }
    await expect(await api.post("/api/v1/webhooks", json=subscription, headers=owner.headers), 201)
    published = await backfill_publish(
        api, owner, sensor_id, linear(10.0, version="b"), at(timeline, 15)
    )
    assert await announce(api, clock) == {"announced": 0}  # not finished yet
    await run_backfills(ingest, clock)

    assert await announce(api, clock) == {"announced": 1}

    rows = audit_rows(pgsql, published["backfill_id"])
    assert [(r["action"], r["actor_id"], r["request_id"]) for r in rows] == [
        ("conversion_backfill.finished", None, "job:conversion_backfills.announce")
    ]
    events = events_of(pgsql, "capture.backfill.finished")
    assert len(events) == 1
    assert events[0]["project_id"] == str(project_id)
    data = events[0]["payload"]["data"]
    assert (data["id"], data["status"], data["rows_done"]) == (
        published["backfill_id"],
        "succeeded",
        3,
    )
    # A later pass has nothing more to announce.
    assert await announce(api, clock) == {"announced": 0}
    assert len(events_of(pgsql, "capture.backfill.finished")) == 1


async def test_a_second_request_returns_the_same_backfill(api, ingest, owner, timeline, pgsql):
    sensor_id = timeline["sensor"]["id"]
    first = await backfill_publish(
        api, owner, sensor_id, linear(10.0, version="b"), at(timeline, 15)
    )

    again = await expect(
        await backfill_request(api, owner, sensor_id, first["id"], at(timeline, 15)), 200
    )

    assert again == first
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM conversion_backfills")
        assert cursor.fetchone()[0] == 1


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_only_owners_backfill(
    api, ingest, auth_stub, project_id, owner, timeline, role, pgsql
):
    sensor_id = timeline["sensor"]["id"]
    url = f"/api/v1/sensors/{sensor_id}/conversion-profiles"
    created = await expect(
        await api.post(url, json=linear(10.0, version="b"), headers=owner.headers), 201
    )
    member = auth_stub.member(project_id, role)

    response = await backfill_request(api, member, sensor_id, created["id"], at(timeline, 15))

    await assert_problem(response, 403, "forbidden")
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM conversion_backfills")
        assert cursor.fetchone()[0] == 0


async def test_a_future_start_is_refused_and_publish_keeps_refusing_a_past_one(
    api, ingest, owner, timeline, clock
):
    sensor_id = timeline["sensor"]["id"]
    url = f"/api/v1/sensors/{sensor_id}/conversion-profiles"
    created = await expect(
        await api.post(url, json=linear(10.0, version="b"), headers=owner.headers), 201
    )

    future = await backfill_request(api, owner, sensor_id, created["id"], clock.now + SECOND)
    await assert_problem(future, 422, "valid_from_not_in_past")
    past = await api.post(
        f"{url}/{created['id']}/schedule",
        json={"valid_from": at(timeline, 15).isoformat()},
        headers=owner.headers,
    )
    await assert_problem(past, 422, "valid_from_not_in_future")
    missing = await api.post(
        f"{url}/{created['id']}/publish?backfill=true", json={}, headers=owner.headers
    )
    await assert_problem(missing, 422, "validation_failed")
    unknown = await api.post(
        f"{url}/{created['id']}/publish?backfill=maybe", json={}, headers=owner.headers
    )
    await assert_problem(unknown, 422, "validation_failed")


async def test_a_backfill_is_not_found_outside_the_sensors_projects(
    api, ingest, owner, auth_stub, timeline
):
    published = await backfill_publish(
        api, owner, timeline["sensor"]["id"], linear(10.0, version="b"), at(timeline, 15)
    )
    stranger = auth_stub.member(uuid.uuid4(), "owner")

    await assert_problem(
        await api.get(f"/api/v1/backfills/{published['backfill_id']}", headers=stranger.headers),
        404,
        "backfill_not_found",
    )
    await assert_problem(
        await api.get(f"/api/v1/backfills/{uuid.uuid4()}", headers=owner.headers),
        404,
        "backfill_not_found",
    )


async def test_live_ingest_keeps_working_during_a_backfill(
    api, ingest, owner, timeline, clock, pgsql
):
    sensor = timeline["sensor"]
    published = await backfill_publish(
        api, owner, sensor["id"], linear(10.0, version="b"), at(timeline, 15)
    )
    # A reading of the backfilled range arriving before the job: converted by the new profile.
    answer = await accepted(
        ingest, sensor["token"], batch(sensor, [reading(at(timeline, 30), 2.0)])
    )
    assert answer["converted"] == 1
    await accepted(ingest, sensor["token"], batch(sensor, [reading(clock.now, 3.0)]))

    await run_backfills(ingest, clock)

    rows = conversions(pgsql, sensor["id"])
    assert (rows[4][1:]) == ("ok", 20.0, published["id"])
    assert rows[-1][1:] == ("ok", 300.0, timeline["c"])


def advisory_waiters(pgsql) -> int:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0]


async def test_a_publish_waits_for_the_batch_being_stored_and_the_next_batch_for_it(
    api, ingest, owner, timeline, pgsql, clock, database_url
):
    """A batch in flight (its transaction read the old timeline and has not committed) holds the
    sensor's timeline: the publish for a past start waits for it, so its backfill finds that
    batch stored; a batch sent meanwhile waits behind the publish and reads the new timeline."""
    sensor = timeline["sensor"]
    url = f"{SENSORS}/{sensor['id']}/conversion-profiles"
    b = await expect(
        await api.post(url, json=linear(10.0, version="b"), headers=owner.headers), 201
    )
    in_flight = await asyncpg.connect(database_url("experiment"))
    try:
        storing = in_flight.transaction()
        await storing.start()
        await in_flight.execute(
            "SELECT telemetry_seam.share_sensor_timeline($1)", uuid.UUID(sensor["id"])
        )
        publishing = asyncio.ensure_future(
            backfill_request(api, owner, sensor["id"], b["id"], at(timeline, 15))
        )
        await eventually(lambda: advisory_waiters(pgsql) == 1, what="the publish to wait")
        sending = asyncio.ensure_future(
            accepted(ingest, sensor["token"], batch(sensor, [reading(at(timeline, 30), 2.0)]))
        )
        await eventually(lambda: advisory_waiters(pgsql) == 2, what="the batch to wait")
        assert not publishing.done()
        assert not sending.done()
        await storing.commit()
        published = await expect(await publishing, 200)
        sent = await sending
    finally:
        await in_flight.close()

    assert sent["converted"] == 1
    rows = conversions(pgsql, sensor["id"])
    assert ("ok", 20.0, published["id"]) in [row[1:] for row in rows]


async def test_stopped_capture_sessions_of_the_range_show_backfilling_until_it_is_done(
    api, ingest, owner, project_id, timeline, clock
):
    sensor = timeline["sensor"]
    experiment = await create_experiment(api, owner, project_id, name="recalibrated")

    async def captured(with_sensor: bool) -> str:
        """A stopped session of a new run (bound to the sensor or not): its path."""
        run = await create_run_in_status(api, owner, experiment["id"], "running")
        if with_sensor:
            await bind(api, owner, run["id"], sensor["id"])
        session = await start_capture(api, owner, run["id"])
        await stop_capture(api, owner, run["id"], session["id"])
        return f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}"

    bound, unbound = await captured(with_sensor=True), await captured(with_sensor=False)
    session = await expect(await api.get(bound, headers=owner.headers), 200)
    # From the session's start up to profile C's: the range covers the session.
    started = datetime.fromisoformat(session["started_at"])
    await backfill_publish(api, owner, sensor["id"], linear(10.0, version="b"), started)

    assert (await expect(await api.get(bound, headers=owner.headers), 200))["status"] == (
        "backfilling"
    )
    assert (await expect(await api.get(unbound, headers=owner.headers), 200))["status"] == (
        "succeeded"
    )
    listed = await expect(await api.get(bound.rsplit("/", 1)[0], headers=owner.headers), 200)
    assert [s["status"] for s in listed["items"]] == ["backfilling"]

    await run_backfills(ingest, clock)

    assert (await expect(await api.get(bound, headers=owner.headers), 200))["status"] == (
        "succeeded"
    )
