"""Conversion profiles: the status machine and the validity timeline, also under racing
publishes."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from experiment_service.app import create_app
from tests.experiment.factories import expect
from tests.experiment.profile_kit import (
    HOUR,
    act,
    action_request,
    active_ids,
    assert_timeline_sound,
    create_profile,
    create_sensor,
    get_profile,
    get_sensor,
    instant,
    overlapping_pairs,
    profile_audit,
    profile_row,
    profile_rows,
    profile_url,
    profiles_url,
)
from tests.problems import assert_problem


@pytest.fixture
async def sensor(client, editor, project_id):
    return await create_sensor(client, editor, project_id)


# --- the status machine ---------------------------------------------------------------------

STATUSES = ("draft", "scheduled", "active", "deprecated")
ACTIONS = ("schedule", "publish", "deprecate")
# The status each action leads to, from each status that allows it.
ALLOWED = {
    ("draft", "schedule"): "scheduled",
    ("draft", "publish"): "active",
    ("scheduled", "publish"): "active",
    ("active", "deprecate"): "deprecated",
}


async def profile_in_status(client, user, sensor_id, status, clock):
    """A profile in `status`, with the clock moved on so that the next change is later."""
    profile = await create_profile(client, user, sensor_id)
    if status == "scheduled":
        await act(client, user, sensor_id, profile["id"], "schedule", valid_from=clock.now + HOUR)
    if status in ("active", "deprecated"):
        await act(client, user, sensor_id, profile["id"], "publish")
        clock.advance(5)
    if status == "deprecated":
        await act(client, user, sensor_id, profile["id"], "deprecate")
        clock.advance(5)
    profile = await get_profile(client, user, sensor_id, profile["id"])
    assert profile["status"] == status
    return profile


def test_allowed_transitions_match_the_domain_table():
    from experiment_service.domain.transitions import PROFILE_TRANSITIONS

    target = {"schedule": "scheduled", "publish": "active", "deprecate": "deprecated"}
    table = {
        (str(source), action): target[action]
        for source, targets in PROFILE_TRANSITIONS.items()
        for action in ACTIONS
        if target[action] in {str(t) for t in targets}
    }
    assert table == ALLOWED


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("status", STATUSES)
async def test_transition_from_status_by_action(
    client, editor, sensor, pgsql, clock, status, action
):
    profile = await profile_in_status(client, editor, sensor["id"], status, clock)
    before = profile_row(pgsql, profile["id"])
    actions = profile_audit(pgsql, profile["id"])
    valid_from = clock.now + 2 * HOUR

    response = await action_request(client, editor, sensor["id"], profile["id"], action, valid_from)

    target = ALLOWED.get((status, action))
    if target is None:
        await assert_problem(response, 409, "invalid_transition")
        assert profile_row(pgsql, profile["id"]) == before
        assert profile_audit(pgsql, profile["id"]) == actions
        assert await get_profile(client, editor, sensor["id"], profile["id"]) == profile
        return
    changed = await expect(response, 200)
    assert changed["status"] == target
    row = profile_row(pgsql, profile["id"])
    if target == "scheduled":
        assert instant(changed["valid_from"]) == row["valid_from"] == valid_from
        assert changed["valid_to"] is None
    elif target == "active":
        assert instant(changed["valid_from"]) == row["valid_from"] == clock.now
        assert changed["valid_to"] is None
        assert (await get_sensor(client, editor, sensor["id"]))["active_profile_id"] == profile[
            "id"
        ]
    else:
        assert instant(changed["valid_to"]) == row["valid_to"] == clock.now
        assert instant(changed["deprecated_at"]) == row["deprecated_at"] == clock.now
        assert row["valid_from"] == before["valid_from"]
        assert (await get_sensor(client, editor, sensor["id"]))["active_profile_id"] is None
    assert row["published_by"] == str(editor.id)
    assert (row["kind"], row["payload"], row["version"]) == (
        before["kind"],
        before["payload"],
        before["version"],
    )
    event = {"scheduled": "scheduled", "active": "activated", "deprecated": "deprecated"}[target]
    assert profile_audit(pgsql, profile["id"]) == [*actions, f"conversion_profile.{event}"]
    assert await get_profile(client, editor, sensor["id"], profile["id"]) == changed
    assert_timeline_sound(pgsql, sensor["id"])


async def test_publish_and_deprecate_accept_no_body_or_an_empty_object(
    client, editor, sensor, clock
):
    profile = await create_profile(client, editor, sensor["id"])
    response = await client.post(
        profile_url(sensor["id"], profile["id"]) + "/publish", json={}, headers=editor.headers
    )
    assert (await expect(response, 200))["status"] == "active"
    clock.advance(1)
    response = await client.post(
        profile_url(sensor["id"], profile["id"]) + "/deprecate", headers=editor.headers
    )
    assert (await expect(response, 200))["status"] == "deprecated"


@pytest.mark.parametrize("action", ["publish", "deprecate"])
async def test_action_with_unknown_field_is_rejected(client, editor, sensor, pgsql, action):
    profile = await create_profile(client, editor, sensor["id"])
    if action == "deprecate":
        await act(client, editor, sensor["id"], profile["id"], "publish")
    before = profile_row(pgsql, profile["id"])

    response = await client.post(
        f"{profile_url(sensor['id'], profile['id'])}/{action}",
        json={"valid_from": "2030-01-01T00:00:00Z"},
        headers=editor.headers,
    )

    await assert_problem(response, 422, "validation_failed")
    assert profile_row(pgsql, profile["id"]) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"valid_from": None},
        {"valid_from": "tomorrow"},
        {"valid_from": "2030-01-01T00:00:00"},  # no offset
        {"valid_from": "2030-01-01"},
        {"valid_from": "2030-01-01T00:00:00Z", "valid_to": "2031-01-01T00:00:00Z"},
        {"valid_from": "9999-12-31T23:30:00-01:00"},  # past year 9999 in UTC
    ],
)
async def test_schedule_with_invalid_body_is_rejected(client, editor, sensor, pgsql, body):
    profile = await create_profile(client, editor, sensor["id"])

    response = await client.post(
        profile_url(sensor["id"], profile["id"]) + "/schedule", json=body, headers=editor.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert any(e["field"] in ("valid_from", "valid_to") for e in problem["errors"]), problem
    assert profile_row(pgsql, profile["id"])["valid_from"] is None


@pytest.mark.parametrize("offset", [timedelta(0), -timedelta(microseconds=1), -HOUR])
async def test_schedule_not_in_future_is_rejected(client, editor, sensor, pgsql, clock, offset):
    profile = await create_profile(client, editor, sensor["id"])

    response = await action_request(
        client, editor, sensor["id"], profile["id"], "schedule", clock.now + offset
    )

    await assert_problem(response, 422, "valid_from_not_in_future")
    assert profile_row(pgsql, profile["id"])["valid_from"] is None
    assert profile_audit(pgsql, profile["id"]) == ["conversion_profile.created"]


async def test_schedule_with_another_offset_stores_the_same_instant(
    client, editor, sensor, pgsql, clock
):
    profile = await create_profile(client, editor, sensor["id"])
    start = (clock.now + HOUR).replace(microsecond=0)
    local = start.astimezone(timezone(timedelta(hours=-7)))

    changed = await act(client, editor, sensor["id"], profile["id"], "schedule", valid_from=local)

    assert instant(changed["valid_from"]) == start
    assert profile_row(pgsql, profile["id"])["valid_from"] == start


async def test_schedule_at_a_taken_start_conflicts(client, editor, sensor, pgsql, clock):
    first = await create_profile(client, editor, sensor["id"])
    second = await create_profile(client, editor, sensor["id"])
    start = clock.now + HOUR
    await act(client, editor, sensor["id"], first["id"], "schedule", valid_from=start)

    response = await action_request(client, editor, sensor["id"], second["id"], "schedule", start)

    await assert_problem(response, 409, "profile_start_taken")
    assert profile_row(pgsql, second["id"])["valid_from"] is None
    # One microsecond later is another instant.
    later = start + timedelta(microseconds=1)
    await act(client, editor, sensor["id"], second["id"], "schedule", valid_from=later)
    rows = {row["id"]: row for row in profile_rows(pgsql, sensor["id"])}
    assert rows[first["id"]]["valid_to"] == later
    assert_timeline_sound(pgsql, sensor["id"])


async def test_schedule_at_the_active_profiles_start_is_not_in_future(
    client, editor, sensor, clock
):
    active = await create_profile(client, editor, sensor["id"])
    published = await act(client, editor, sensor["id"], active["id"], "publish")
    draft = await create_profile(client, editor, sensor["id"])
    clock.advance(1)

    response = await action_request(
        client, editor, sensor["id"], draft["id"], "schedule", instant(published["valid_from"])
    )

    await assert_problem(response, 422, "valid_from_not_in_future")


# --- the timeline ---------------------------------------------------------------------------


async def test_timeline_follows_publishes_schedules_and_the_clock(
    client, editor, sensor, pgsql, clock
):
    sid = sensor["id"]
    a, b, c, d = [await create_profile(client, editor, sid, version=v) for v in "ABCD"]

    t0 = clock.now
    published_a = await act(client, editor, sid, a["id"], "publish")
    assert (instant(published_a["valid_from"]), published_a["valid_to"]) == (t0, None)
    assert (await get_sensor(client, editor, sid))["active_profile_id"] == a["id"]

    clock.advance(10)
    t1 = clock.now
    published_b = await act(client, editor, sid, b["id"], "publish")
    assert published_b["status"] == "active"
    assert instant(published_b["valid_from"]) == t1
    old_a = await get_profile(client, editor, sid, a["id"])
    assert old_a["status"] == "deprecated"
    assert instant(old_a["valid_to"]) == t1
    assert old_a["deprecated_at"] is None  # ended by its successor, not deprecated by hand
    assert (await get_sensor(client, editor, sid))["active_profile_id"] == b["id"]

    # C is scheduled an hour ahead; only a future start is accepted, and only one per instant.
    response = await action_request(client, editor, sid, c["id"], "schedule", t1)
    await assert_problem(response, 422, "valid_from_not_in_future")
    tc = t1 + HOUR
    scheduled_c = await act(client, editor, sid, c["id"], "schedule", valid_from=tc)
    assert (scheduled_c["status"], instant(scheduled_c["valid_from"])) == ("scheduled", tc)
    assert scheduled_c["valid_to"] is None
    response = await action_request(client, editor, sid, d["id"], "schedule", tc)
    await assert_problem(response, 409, "profile_start_taken")
    # B stays active, but now ends where C begins.
    current_b = await get_profile(client, editor, sid, b["id"])
    assert (current_b["status"], instant(current_b["valid_to"])) == ("active", tc)

    # D, published between now and C's start, runs until C takes over.
    clock.advance(10)
    t2 = clock.now
    published_d = await act(client, editor, sid, d["id"], "publish")
    assert (instant(published_d["valid_from"]), instant(published_d["valid_to"])) == (t2, tc)
    assert published_d["status"] == "active"
    assert instant((await get_profile(client, editor, sid, b["id"]))["valid_to"]) == t2
    assert (await get_profile(client, editor, sid, c["id"]))["status"] == "scheduled"

    # At C's start, with no request in between, C is active and D deprecated.
    clock.now = tc
    statuses = {
        p["version"]: p["status"]
        for p in (await expect(await client.get(profiles_url(sid), headers=editor.headers), 200))[
            "items"
        ]
    }
    assert statuses == {"A": "deprecated", "B": "deprecated", "C": "active", "D": "deprecated"}
    assert (await get_sensor(client, editor, sid))["active_profile_id"] == c["id"]
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_log WHERE parent_id = %s", (sid,))
        audited = cursor.fetchone()[0]

    clock.advance(60)
    t4 = clock.now
    deprecated_c = await act(client, editor, sid, c["id"], "deprecate")
    assert deprecated_c["status"] == "deprecated"
    assert instant(deprecated_c["valid_to"]) == instant(deprecated_c["deprecated_at"]) == t4
    assert (await get_sensor(client, editor, sid))["active_profile_id"] is None
    assert active_ids(pgsql, sid, t4) == []

    rows = profile_rows(pgsql, sid)
    assert [(r["version"], r["valid_from"], r["valid_to"]) for r in rows] == [
        ("A", t0, t1),
        ("B", t1, t2),
        ("D", t2, tc),
        ("C", tc, t4),
    ]
    assert_timeline_sound(pgsql, sid)
    # The time-driven changes wrote nothing; only C's deprecation did.
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_log WHERE parent_id = %s", (sid,))
        assert cursor.fetchone()[0] == audited + 1


async def test_deprecating_the_active_profile_leaves_a_scheduled_one_to_start(
    client, editor, sensor, pgsql, clock
):
    sid = sensor["id"]
    active = await create_profile(client, editor, sid)
    later = await create_profile(client, editor, sid)
    await act(client, editor, sid, active["id"], "publish")
    start = clock.now + HOUR
    await act(client, editor, sid, later["id"], "schedule", valid_from=start)
    clock.advance(60)
    gap_from = clock.now

    deprecated = await act(client, editor, sid, active["id"], "deprecate")

    assert instant(deprecated["valid_to"]) == gap_from
    assert (await get_sensor(client, editor, sid))["active_profile_id"] is None
    clock.now = start - timedelta(microseconds=1)
    assert (await get_profile(client, editor, sid, later["id"]))["status"] == "scheduled"
    assert active_ids(pgsql, sid, clock.now) == []
    clock.now = start
    assert (await get_profile(client, editor, sid, later["id"]))["status"] == "active"
    assert (await get_sensor(client, editor, sid))["active_profile_id"] == later["id"]
    rows = profile_rows(pgsql, sid)
    assert [(r["id"], r["valid_from"], r["valid_to"]) for r in rows] == [
        (active["id"], instant(deprecated["valid_from"]), gap_from),
        (later["id"], start, None),
    ]
    assert_timeline_sound(pgsql, sid)


async def test_publishing_a_scheduled_profile_early_moves_its_start_to_now(
    client, editor, sensor, pgsql, clock
):
    sid = sensor["id"]
    current = await create_profile(client, editor, sid)
    await act(client, editor, sid, current["id"], "publish")
    near, far = await create_profile(client, editor, sid), await create_profile(client, editor, sid)
    await act(client, editor, sid, near["id"], "schedule", valid_from=clock.now + HOUR)
    await act(client, editor, sid, far["id"], "schedule", valid_from=clock.now + 2 * HOUR)
    assert instant((await get_profile(client, editor, sid, near["id"]))["valid_to"]) == (
        clock.now + 2 * HOUR
    )
    clock.advance(30)

    published = await act(client, editor, sid, far["id"], "publish")

    # Far now starts at once, and ends where near, still scheduled, begins.
    assert instant(published["valid_from"]) == clock.now
    assert instant(published["valid_to"]) == clock.now - timedelta(seconds=30) + HOUR
    near_now = await get_profile(client, editor, sid, near["id"])
    assert (near_now["status"], near_now["valid_to"]) == ("scheduled", None)
    # The profile active until now ends where far begins.
    ended = await get_profile(client, editor, sid, current["id"])
    assert (ended["status"], instant(ended["valid_to"])) == ("deprecated", clock.now)
    assert (await get_sensor(client, editor, sid))["active_profile_id"] == far["id"]
    assert_timeline_sound(pgsql, sid)


async def test_schedule_far_in_the_future_is_stored(client, editor, sensor, pgsql):
    profile = await create_profile(client, editor, sensor["id"])
    start = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

    changed = await act(client, editor, sensor["id"], profile["id"], "schedule", valid_from=start)

    assert changed["valid_from"] == "9999-12-31T23:59:59Z"
    with pgsql["experiment"].cursor() as cursor:
        # Compared in SQL: in a time zone east of UTC the instant falls in year 10000.
        cursor.execute(
            "SELECT valid_from = %s FROM conversion_profiles WHERE id = %s", (start, profile["id"])
        )
        assert cursor.fetchone()[0] is True


async def test_schedule_at_the_last_microsecond_of_year_9999_stores_that_instant(
    client, editor, sensor, pgsql
):
    profile = await create_profile(client, editor, sensor["id"])
    start = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

    response = await action_request(client, editor, sensor["id"], profile["id"], "schedule", start)

    if response.status == 200:
        assert (await response.json())["valid_from"] == "9999-12-31T23:59:59.999999Z"
    else:
        await assert_problem(response, 422, "validation_failed")
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM conversion_profiles WHERE NOT isfinite(valid_from)"
            " OR NOT isfinite(valid_to) OR NOT isfinite(deprecated_at)"
        )
        assert cursor.fetchone()[0] == 0


async def test_table_of_a_thousand_points_is_accepted(client, editor, sensor, pgsql):
    points = [{"x": i / 10, "y": i * i} for i in range(1000)]

    profile = await create_profile(
        client, editor, sensor["id"], kind="table", payload={"points": points}
    )

    assert len(profile["payload"]["points"]) == 1000
    assert len(profile_rows(pgsql, sensor["id"])[0]["payload"]["points"]) == 1000


async def test_deprecating_in_the_tick_of_publishing_leaves_one_microsecond_of_validity(
    client, editor, sensor, pgsql, clock
):
    # A validity interval is never empty: ended in the very tick it began, it lasts one
    # microsecond, and the profile counts as deprecated once the clock moves on.
    sid = sensor["id"]
    profile = await create_profile(client, editor, sid)
    await act(client, editor, sid, profile["id"], "publish")

    await act(client, editor, sid, profile["id"], "deprecate")

    (row,) = profile_rows(pgsql, sid)
    assert row["valid_from"] == clock.now
    assert row["valid_to"] == row["deprecated_at"] == clock.now + timedelta(microseconds=1)
    clock.advance(0.001)
    assert (await get_profile(client, editor, sid, profile["id"]))["status"] == "deprecated"
    assert (await get_sensor(client, editor, sid))["active_profile_id"] is None
    assert profile_audit(pgsql, profile["id"])[-1] == "conversion_profile.deprecated"


async def test_scheduling_before_a_scheduled_profile_ends_at_its_start(
    client, editor, sensor, pgsql, clock
):
    sid = sensor["id"]
    late, early = (
        await create_profile(client, editor, sid),
        await create_profile(client, editor, sid),
    )
    await act(client, editor, sid, late["id"], "schedule", valid_from=clock.now + 2 * HOUR)

    scheduled = await act(client, editor, sid, early["id"], "schedule", valid_from=clock.now + HOUR)

    assert instant(scheduled["valid_to"]) == clock.now + 2 * HOUR
    assert (await get_profile(client, editor, sid, late["id"]))["valid_to"] is None
    assert_timeline_sound(pgsql, sid)


async def test_publish_within_one_clock_tick_starts_one_microsecond_later(
    client, editor, sensor, pgsql, clock
):
    sid = sensor["id"]
    first, second = (
        await create_profile(client, editor, sid),
        await create_profile(client, editor, sid),
    )
    await act(client, editor, sid, first["id"], "publish")

    await act(client, editor, sid, second["id"], "publish")

    rows = profile_rows(pgsql, sid)
    assert [(r["id"], r["valid_from"]) for r in rows] == [
        (first["id"], clock.now),
        (second["id"], clock.now + timedelta(microseconds=1)),
    ]
    assert rows[0]["valid_to"] == rows[1]["valid_from"]
    assert_timeline_sound(pgsql, sid)
    clock.advance(1)
    assert active_ids(pgsql, sid, clock.now) == [second["id"]]


async def test_three_publishes_within_one_clock_tick_all_succeed(
    client, editor, sensor, pgsql, clock
):
    sid = sensor["id"]
    drafts = [await create_profile(client, editor, sid) for _ in range(3)]

    responses = [await action_request(client, editor, sid, d["id"], "publish") for d in drafts]

    assert [r.status for r in responses] == [200, 200, 200]
    assert [row["valid_from"] for row in profile_rows(pgsql, sid)] == [
        clock.now + timedelta(microseconds=n) for n in range(3)
    ]
    assert_timeline_sound(pgsql, sid)


# --- racing publishes -----------------------------------------------------------------------


class SteppingClock:
    """A clock that moves on by a millisecond at every reading, as real time does."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture
async def moving_client(aiohttp_client, pgsql, make_settings):
    clock = SteppingClock()
    return await aiohttp_client(create_app(make_settings("experiment"), clock=clock)), clock


async def race_publishes(client, user, sensor_id, count):
    drafts = [await create_profile(client, user, sensor_id) for _ in range(count)]
    responses = await asyncio.gather(
        *(action_request(client, user, sensor_id, d["id"], "publish") for d in drafts)
    )
    return drafts, responses


@pytest.mark.parametrize("count", [2, 5])
async def test_racing_publishes_never_overlap(moving_client, editor, project_id, pgsql, count):
    client, clock = moving_client
    sensor = await create_sensor(client, editor, project_id)
    sid = sensor["id"]
    for _ in range(8):
        drafts, responses = await race_publishes(client, editor, sid, count)

        for response in responses:
            assert response.status == 200, await response.text()
        published = [await r.json() for r in responses]
        assert all(p["valid_from"] is not None for p in published)
        assert overlapping_pairs(pgsql, sid) == 0
        assert_timeline_sound(pgsql, sid)
        # The last to start is the one active now; every other profile has ended.
        rows = profile_rows(pgsql, sid)
        assert active_ids(pgsql, sid, clock.now) == [rows[-1]["id"]]
        assert rows[-1]["id"] in {d["id"] for d in drafts}
        assert (await get_sensor(client, editor, sid))["active_profile_id"] == rows[-1]["id"]
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM audit_log WHERE parent_id = %s AND action = %s",
            (sid, "conversion_profile.activated"),
        )
        assert cursor.fetchone()[0] == 8 * count


@pytest.mark.parametrize("count", [2, 5])
async def test_racing_publishes_in_one_clock_tick_fail_cleanly(
    client, editor, sensor, pgsql, clock, count
):
    sid = sensor["id"]
    for _ in range(5):
        _, responses = await race_publishes(client, editor, sid, count)

        # Each publish waits for the one before; within one tick, each starts a microsecond later.
        for response in responses:
            assert response.status == 200, await response.text()
        assert overlapping_pairs(pgsql, sid) == 0
        assert_timeline_sound(pgsql, sid)
        clock.advance(1)
        assert len(active_ids(pgsql, sid, clock.now)) == 1


async def test_racing_publishes_of_one_draft_activate_it_once(client, editor, sensor, pgsql):
    draft = await create_profile(client, editor, sensor["id"])

    responses = await asyncio.gather(
        *(action_request(client, editor, sensor["id"], draft["id"], "publish") for _ in range(5))
    )

    assert sorted(r.status for r in responses) == [200, 409, 409, 409, 409]
    for response in responses:
        if response.status == 409:
            await assert_problem(response, 409, "invalid_transition")
    assert profile_audit(pgsql, draft["id"]) == [
        "conversion_profile.created",
        "conversion_profile.activated",
    ]


async def test_racing_schedules_at_one_instant_take_it_once(client, editor, sensor, pgsql, clock):
    start = clock.now + HOUR
    drafts = [await create_profile(client, editor, sensor["id"]) for _ in range(4)]

    responses = await asyncio.gather(
        *(action_request(client, editor, sensor["id"], d["id"], "schedule", start) for d in drafts)
    )

    assert sorted(r.status for r in responses) == [200, 409, 409, 409]
    for response in responses:
        if response.status == 409:
            await assert_problem(response, 409, "profile_start_taken")
    starts = [row["valid_from"] for row in profile_rows(pgsql, sensor["id"])]
    assert starts.count(start) == 1
    assert starts.count(None) == 3


async def test_racing_publish_and_deprecate_keep_the_timeline_sound(
    moving_client, editor, project_id, pgsql
):
    client, clock = moving_client
    sid = (await create_sensor(client, editor, project_id))["id"]
    for _ in range(5):
        active = await create_profile(client, editor, sid)
        await act(client, editor, sid, active["id"], "publish")
        draft = await create_profile(client, editor, sid)

        deprecated, published = await asyncio.gather(
            action_request(client, editor, sid, active["id"], "deprecate"),
            action_request(client, editor, sid, draft["id"], "publish"),
        )

        assert published.status == 200, await published.text()
        if deprecated.status != 200:
            # The publish ended it first: it is no longer active.
            await assert_problem(deprecated, 409, "invalid_transition")
        assert_timeline_sound(pgsql, sid)
        assert active_ids(pgsql, sid, clock.now) == [draft["id"]]
