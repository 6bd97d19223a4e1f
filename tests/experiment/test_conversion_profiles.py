"""Conversion profiles of a sensor: payloads per kind, the status machine, the validity timeline
(also under racing publishes), who may read and write them, and their audit rows."""

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from experiment_service.app import create_app
from tests.experiment.factories import audit_count, audit_rows, expect, share_sensor
from tests.problems import assert_problem

HOUR = timedelta(hours=1)


def profiles_url(sensor_id: str) -> str:
    return f"/api/v1/sensors/{sensor_id}/conversion-profiles"


def profile_url(sensor_id: str, profile_id: str) -> str:
    return f"{profiles_url(sensor_id)}/{profile_id}"


def instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def create_sensor(client, user, project_id, *, expect_status=201, **overrides):
    body = {
        "project_id": str(project_id),
        "name": f"sensor {uuid.uuid4().hex[:8]}",
        "type": "pressure",
        "input_unit": "mV",
        "display_unit": "kPa",
        **overrides,
    }
    response = await client.post("/api/v1/sensors", json=body, headers=user.headers)
    return await expect(response, expect_status)


async def get_sensor(client, user, sensor_id):
    return await expect(await client.get(f"/api/v1/sensors/{sensor_id}", headers=user.headers), 200)


async def create_profile(
    client, user, sensor_id, *, expect_status=201, kind="linear", payload=None, **overrides
):
    body = {
        "version": f"v-{uuid.uuid4().hex[:8]}",
        "kind": kind,
        "payload": {"a": 2.0} if payload is None else payload,
        **overrides,
    }
    response = await client.post(profiles_url(sensor_id), json=body, headers=user.headers)
    return await expect(response, expect_status)


async def get_profile(client, user, sensor_id, profile_id):
    response = await client.get(profile_url(sensor_id, profile_id), headers=user.headers)
    return await expect(response, 200)


def action_request(client, user, sensor_id, profile_id, action, valid_from=None):
    url = f"{profile_url(sensor_id, profile_id)}/{action}"
    body = {"valid_from": valid_from.isoformat()} if action == "schedule" else None
    return client.post(url, json=body, headers=user.headers)


async def act(client, user, sensor_id, profile_id, action, *, valid_from=None, expect_status=200):
    response = await action_request(client, user, sensor_id, profile_id, action, valid_from)
    return await expect(response, expect_status)


def profile_rows(pgsql, sensor_id) -> list[dict]:
    """The sensor's profiles as stored: the timeline first (by start), then drafts."""
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT id::text, version, kind, payload, description, valid_from, valid_to,"
            " deprecated_at, created_by::text, published_by::text, updated_at"
            " FROM conversion_profiles WHERE sensor_id = %s"
            " ORDER BY valid_from NULLS LAST, created_at, id",
            (str(sensor_id),),
        )
        return [dict(row) for row in cursor]


def profile_row(pgsql, profile_id) -> dict | None:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT id::text, sensor_id::text, version, kind, payload, valid_from, valid_to,"
            " deprecated_at, published_by::text, updated_at"
            " FROM conversion_profiles WHERE id = %s",
            (str(profile_id),),
        )
        row = cursor.fetchone()
    return dict(row) if row else None


def overlapping_pairs(pgsql, sensor_id) -> int:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM conversion_profiles a JOIN conversion_profiles b"
            " ON a.sensor_id = b.sensor_id AND a.id < b.id"
            " WHERE a.sensor_id = %s AND a.valid_from IS NOT NULL AND b.valid_from IS NOT NULL"
            " AND tstzrange(a.valid_from, a.valid_to) && tstzrange(b.valid_from, b.valid_to)",
            (str(sensor_id),),
        )
        return cursor.fetchone()[0]


def active_ids(pgsql, sensor_id, at: datetime) -> list[str]:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT id::text FROM conversion_profiles WHERE sensor_id = %s"
            " AND valid_from <= %s AND (valid_to IS NULL OR valid_to > %s)",
            (str(sensor_id), at, at),
        )
        return [row[0] for row in cursor]


def assert_timeline_sound(pgsql, sensor_id):
    """No overlap; each interval ends where the next begins unless it was deprecated first."""
    assert overlapping_pairs(pgsql, sensor_id) == 0
    timeline = [row for row in profile_rows(pgsql, sensor_id) if row["valid_from"] is not None]
    for before, after in itertools.pairwise(timeline):
        assert before["valid_to"] is not None, before
        assert before["valid_to"] > before["valid_from"], before
        if before["deprecated_at"] is None or before["deprecated_at"] >= after["valid_from"]:
            # Gap-free: the next profile takes over exactly where this one ends.
            assert before["valid_to"] == after["valid_from"], (before, after)
        else:
            assert before["valid_to"] == before["deprecated_at"], before
    if timeline:
        assert timeline[-1]["valid_to"] == timeline[-1]["deprecated_at"]


def profile_audit(pgsql, profile_id) -> list[str]:
    return [row["action"] for row in audit_rows(pgsql, profile_id)]


@pytest.fixture
async def sensor(client, editor, project_id):
    return await create_sensor(client, editor, project_id)


# --- creation and payloads ------------------------------------------------------------------

STORED_PAYLOADS = [
    ("linear", {"a": 2.5}, {"a": 2.5, "b": 0.0}),
    ("linear", {"a": -1, "b": 3}, {"a": -1.0, "b": 3.0}),
    ("polynomial", {"coefficients": [1]}, {"coefficients": [1.0]}),
    (
        "polynomial",
        {"coefficients": [0.5, -1, 2, 0, 1e-9, 7]},
        {"coefficients": [0.5, -1.0, 2.0, 0.0, 1e-9, 7.0]},
    ),
    (
        "table",
        {"points": [{"x": 0, "y": 1}, {"x": 10, "y": 21.5}]},
        {"points": [{"x": 0.0, "y": 1.0}, {"x": 10.0, "y": 21.5}], "extrapolate": False},
    ),
    (
        "table",
        {"points": [{"x": -5, "y": 0}, {"x": 0, "y": 0}, {"x": 5, "y": 9}], "extrapolate": True},
        {
            "points": [{"x": -5.0, "y": 0.0}, {"x": 0.0, "y": 0.0}, {"x": 5.0, "y": 9.0}],
            "extrapolate": True,
        },
    ),
]


@pytest.mark.parametrize(("kind", "payload", "stored"), STORED_PAYLOADS)
async def test_create_profile_stores_a_normalised_draft(
    client, editor, sensor, pgsql, kind, payload, stored
):
    response = await client.post(
        profiles_url(sensor["id"]),
        json={"version": "cal-1", "kind": kind, "payload": payload, "description": "bench"},
        headers=editor.headers,
    )
    profile = await expect(response, 201)

    assert response.headers["Location"] == profile_url(sensor["id"], profile["id"])
    assert profile["sensor_id"] == sensor["id"]
    assert profile["version"] == "cal-1"
    assert profile["kind"] == kind
    assert profile["payload"] == stored
    assert profile["description"] == "bench"
    assert profile["status"] == "draft"
    assert profile["valid_from"] is None
    assert profile["valid_to"] is None
    assert profile["deprecated_at"] is None
    assert profile["created_by"] == str(editor.id)
    assert profile["published_by"] is None
    (row,) = profile_rows(pgsql, sensor["id"])
    assert row["id"] == profile["id"]
    assert (row["kind"], row["payload"], row["valid_from"]) == (kind, stored, None)
    assert await get_profile(client, editor, sensor["id"], profile["id"]) == profile
    assert (await get_sensor(client, editor, sensor["id"]))["active_profile_id"] is None


async def test_create_profile_with_taken_version_conflicts(client, editor, sensor, pgsql):
    first = await create_profile(client, editor, sensor["id"], version="v1")
    audited = audit_count(pgsql)

    response = await client.post(
        profiles_url(sensor["id"]),
        json={"version": "v1", "kind": "polynomial", "payload": {"coefficients": [1]}},
        headers=editor.headers,
    )

    await assert_problem(response, 409, "profile_version_taken")
    assert [row["id"] for row in profile_rows(pgsql, sensor["id"])] == [first["id"]]
    assert audit_count(pgsql) == audited


async def test_same_version_on_another_sensor_is_allowed(client, editor, sensor, project_id):
    other = await create_sensor(client, editor, project_id)
    await create_profile(client, editor, sensor["id"], version="v1")

    profile = await create_profile(client, editor, other["id"], version="v1")

    assert profile["sensor_id"] == other["id"]


async def test_create_profile_with_idempotency_key_replays_once(client, editor, sensor, pgsql):
    body = {"version": "v1", "kind": "linear", "payload": {"a": 1}}
    headers = {**editor.headers, "Idempotency-Key": "profile-v1"}

    first = await client.post(profiles_url(sensor["id"]), json=body, headers=headers)
    second = await client.post(profiles_url(sensor["id"]), json=body, headers=headers)

    assert await expect(second, 201) == await expect(first, 201)
    assert len(profile_rows(pgsql, sensor["id"])) == 1


INVALID_PROFILES = [
    # Non-finite numbers, written as strings, which a lax float parser would read.
    ({"kind": "linear", "payload": {"a": "NaN"}}, "payload.a"),
    ({"kind": "linear", "payload": {"a": "nan"}}, "payload.a"),
    ({"kind": "linear", "payload": {"a": "Infinity"}}, "payload.a"),
    ({"kind": "linear", "payload": {"a": 1, "b": "-Infinity"}}, "payload.b"),
    ({"kind": "linear", "payload": {"a": "inf"}}, "payload.a"),
    ({"kind": "linear", "payload": {"a": "1e400"}}, "payload.a"),
    ({"kind": "polynomial", "payload": {"coefficients": [1, "NaN"]}}, "payload.coefficients.1"),
    ({"kind": "polynomial", "payload": {"coefficients": ["-inf"]}}, "payload.coefficients.0"),
    (
        {"kind": "table", "payload": {"points": [{"x": 0, "y": "Infinity"}, {"x": 1, "y": 1}]}},
        "payload.points.0.y",
    ),
    (
        {"kind": "table", "payload": {"points": [{"x": 0, "y": 0}, {"x": "NaN", "y": 1}]}},
        "payload.points.1.x",
    ),
    # Shapes per kind.
    ({"kind": "linear", "payload": {}}, "payload.a"),
    ({"kind": "linear", "payload": {"a": "steep"}}, "payload.a"),
    ({"kind": "linear", "payload": {"a": None}}, "payload.a"),
    ({"kind": "linear", "payload": {"a": [1]}}, "payload.a"),
    ({"kind": "polynomial", "payload": {}}, "payload.coefficients"),
    ({"kind": "polynomial", "payload": {"coefficients": []}}, "payload.coefficients"),
    ({"kind": "polynomial", "payload": {"coefficients": list(range(7))}}, "payload.coefficients"),
    ({"kind": "polynomial", "payload": {"coefficients": list(range(10))}}, "payload.coefficients"),
    ({"kind": "polynomial", "payload": {"coefficients": 1}}, "payload.coefficients"),
    (
        {"kind": "table", "payload": {"points": [{"x": 2, "y": 0}, {"x": 1, "y": 1}]}},
        "payload.points",
    ),
    (
        {
            "kind": "table",
            "payload": {"points": [{"x": 0, "y": 0}, {"x": 1, "y": 1}, {"x": 1, "y": 2}]},
        },
        "payload.points",
    ),
    ({"kind": "table", "payload": {"points": [{"x": 0, "y": 0}]}}, "payload.points"),
    ({"kind": "table", "payload": {"points": []}}, "payload.points"),
    (
        {"kind": "table", "payload": {"points": [{"x": i, "y": i} for i in range(1001)]}},
        "payload.points",
    ),
    (
        {"kind": "table", "payload": {"points": [{"x": 0, "y": 0}, {"x": 1}]}},
        "payload.points.1.y",
    ),
    (
        {"kind": "table", "payload": {"points": [{"x": 0, "y": 0, "z": 1}, {"x": 1, "y": 1}]}},
        "payload.points.0.z",
    ),
    (
        {"kind": "table", "payload": {"points": [[0, 0], [1, 1]]}},
        "payload.points.0",
    ),
    (
        {
            "kind": "table",
            "payload": {"points": [{"x": 0, "y": 0}, {"x": 1, "y": 1}], "extrapolate": "maybe"},
        },
        "payload.extrapolate",
    ),
    # Fields the kind does not have.
    ({"kind": "linear", "payload": {"a": 1, "c": 2}}, "payload.c"),
    ({"kind": "linear", "payload": {"coefficients": [1]}}, "payload.a"),
    ({"kind": "polynomial", "payload": {"coefficients": [1], "a": 1}}, "payload.a"),
    (
        {"kind": "table", "payload": {"points": [{"x": 0, "y": 0}, {"x": 1, "y": 1}], "b": 0}},
        "payload.b",
    ),
    # The envelope.
    ({"kind": "cubic", "payload": {"a": 1}}, "kind"),
    ({"kind": None, "payload": {"a": 1}}, "kind"),
    ({"payload": {"a": 1}}, "kind"),
    ({"kind": "linear"}, "payload"),
    ({"kind": "linear", "payload": [1, 2]}, "payload"),
    ({"kind": "linear", "payload": "a=1"}, "payload"),
    ({"kind": "linear", "payload": None}, "payload"),
    ({"kind": "linear", "payload": 1.5}, "payload"),
    ({"kind": "linear", "payload": {"a": 1}, "version": ""}, "version"),
    ({"kind": "linear", "payload": {"a": 1}, "version": "v" * 65}, "version"),
    ({"kind": "linear", "payload": {"a": 1}, "version": 1}, "version"),
    ({"kind": "linear", "payload": {"a": 1}, "description": "d" * 10001}, "description"),
    ({"kind": "linear", "payload": {"a": 1}, "status": "active"}, "status"),
    ({"kind": "linear", "payload": {"a": 1}, "version": "v\x001"}, "version"),
    ({"kind": "linear", "payload": {"a": 1, "b\x00": 2}}, "payload"),
    ({"kind": "linear", "payload": {"a": 1}, "valid_from": "2030-01-01T00:00:00Z"}, "valid_from"),
]


@pytest.mark.parametrize(("body", "field"), INVALID_PROFILES, ids=lambda v: str(v)[:60])
async def test_create_profile_with_invalid_body_names_the_field(
    client, editor, sensor, pgsql, body, field
):
    audited = audit_count(pgsql)
    body = {"version": "v1", **body}

    response = await client.post(profiles_url(sensor["id"]), json=body, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    fields = [error["field"] for error in problem["errors"]]
    assert field in fields, problem
    assert all(error["in"] == "body" for error in problem["errors"]), problem
    assert profile_rows(pgsql, sensor["id"]) == []
    assert audit_count(pgsql) == audited


@pytest.mark.parametrize(
    "number", ["NaN", "-NaN", "Infinity", "-Infinity", "inf", "1e400", "-1e400", "1" + "0" * 400]
)
async def test_create_profile_with_non_finite_json_number_is_malformed(
    client, editor, sensor, pgsql, number
):
    body = f'{{"version":"v","kind":"linear","payload":{{"a":{number}}}}}'

    response = await client.post(
        profiles_url(sensor["id"]),
        data=body,
        headers={**editor.headers, "Content-Type": "application/json"},
    )

    await assert_problem(response, 400, "malformed_json")
    assert profile_rows(pgsql, sensor["id"]) == []


@pytest.mark.parametrize("value", ["1.5", "-2", "1e-3", "", True, False])
async def test_number_written_as_another_type_is_rejected(client, editor, sensor, pgsql, value):
    response = await client.post(
        profiles_url(sensor["id"]),
        json={"version": "v", "kind": "polynomial", "payload": {"coefficients": [0, value]}},
        headers=editor.headers,
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["payload.coefficients.1"], problem
    assert profile_rows(pgsql, sensor["id"]) == []


async def test_integers_and_extreme_finite_numbers_are_stored_as_numbers(
    client, editor, sensor, pgsql
):
    coefficients = [1, -2, 1e-300, -1.7976931348623157e308, 2**63, 5e-324]

    profile = await create_profile(
        client, editor, sensor["id"], kind="polynomial", payload={"coefficients": coefficients}
    )

    expected = [float(c) for c in coefficients]
    # JSON has one number type: a float may be written without a decimal point.
    assert [float(c) for c in profile["payload"]["coefficients"]] == expected
    (row,) = profile_rows(pgsql, sensor["id"])
    assert [float(c) for c in row["payload"]["coefficients"]] == expected
    assert await get_profile(client, editor, sensor["id"], profile["id"]) == profile
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT jsonb_typeof(c) FROM conversion_profiles,"
            " jsonb_array_elements(payload -> 'coefficients') c WHERE sensor_id = %s",
            (sensor["id"],),
        )
        assert {typ for (typ,) in cursor} == {"number"}


async def test_no_stored_payload_holds_a_non_finite_number(client, editor, sensor, pgsql):
    # Every way of writing a non-finite number, in every numeric field of every kind.
    spellings = ["NaN", "Infinity", "-Infinity", "inf", "1e999"]
    payloads = []
    for value in spellings:
        payloads += [
            ("linear", {"a": value}),
            ("linear", {"a": 1, "b": value}),
            ("polynomial", {"coefficients": [0, value]}),
            ("table", {"points": [{"x": value, "y": 0}, {"x": 1, "y": 1}]}),
            ("table", {"points": [{"x": 0, "y": 0}, {"x": 1, "y": value}]}),
        ]
    for kind, payload in payloads:
        response = await client.post(
            profiles_url(sensor["id"]),
            json={"version": uuid.uuid4().hex, "kind": kind, "payload": payload},
            headers=editor.headers,
        )
        await assert_problem(response, 422, "validation_failed")
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM conversion_profiles WHERE payload::text ~* '(nan|inf)'"
        )
        assert cursor.fetchone()[0] == 0
    assert profile_rows(pgsql, sensor["id"]) == []


# --- a first profile at sensor creation -----------------------------------------------------


async def test_sensor_created_with_a_profile_has_it_active(
    client, editor, project_id, pgsql, clock
):
    sensor = await create_sensor(
        client,
        editor,
        project_id,
        conversion_profile={
            "version": "factory",
            "kind": "table",
            "payload": {"points": [{"x": 0, "y": 0}, {"x": 1, "y": 2}]},
        },
    )

    (row,) = profile_rows(pgsql, sensor["id"])
    assert sensor["active_profile_id"] == row["id"]
    assert row["payload"] == {
        "points": [{"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 2.0}],
        "extrapolate": False,
    }
    assert (row["valid_from"], row["valid_to"]) == (clock.now, None)
    assert row["published_by"] == str(editor.id)
    profile = await get_profile(client, editor, sensor["id"], row["id"])
    assert (profile["status"], profile["version"]) == ("active", "factory")


SENSOR_PROFILE_ERRORS = [
    ({"kind": "linear", "payload": {"a": "NaN"}}, "conversion_profile.payload.a"),
    ({"kind": "linear", "payload": {"a": 1, "b": "Infinity"}}, "conversion_profile.payload.b"),
    ({"kind": "linear", "payload": {"a": 1, "c": 1}}, "conversion_profile.payload.c"),
    (
        {"kind": "polynomial", "payload": {"coefficients": list(range(10))}},
        "conversion_profile.payload.coefficients",
    ),
    (
        {"kind": "polynomial", "payload": {"coefficients": []}},
        "conversion_profile.payload.coefficients",
    ),
    (
        {"kind": "table", "payload": {"points": [{"x": 1, "y": 0}, {"x": 0, "y": 1}]}},
        "conversion_profile.payload.points",
    ),
    (
        {"kind": "table", "payload": {"points": [{"x": 1, "y": 0}, {"x": 1, "y": 1}]}},
        "conversion_profile.payload.points",
    ),
    (
        {"kind": "table", "payload": {"points": [{"x": 1, "y": 0}]}},
        "conversion_profile.payload.points",
    ),
    ({"kind": "spline", "payload": {"a": 1}}, "conversion_profile.kind"),
    ({"kind": "linear", "payload": [1]}, "conversion_profile.payload"),
    ({"kind": "linear", "payload": {"a": 1}, "version": ""}, "conversion_profile.version"),
]


@pytest.mark.parametrize(("profile", "field"), SENSOR_PROFILE_ERRORS, ids=lambda v: str(v)[:60])
async def test_sensor_with_invalid_first_profile_is_not_created(
    client, editor, project_id, pgsql, profile, field
):
    audited = audit_count(pgsql)
    body = {
        "project_id": str(project_id),
        "name": "gauge",
        "type": "pressure",
        "input_unit": "mV",
        "display_unit": "kPa",
        "conversion_profile": {"version": "v1", **profile},
    }

    response = await client.post("/api/v1/sensors", json=body, headers=editor.headers)

    problem = await assert_problem(response, 422, "validation_failed")
    assert field in [error["field"] for error in problem["errors"]], problem
    with pgsql["experiment"].cursor() as cursor:
        for table in ("sensors", "sensor_projects", "sensor_tokens", "conversion_profiles"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            assert cursor.fetchone()[0] == 0, table
    assert audit_count(pgsql) == audited


# --- reading --------------------------------------------------------------------------------


async def test_list_profiles_pages_oldest_first(client, editor, viewer, sensor):
    created = [
        await create_profile(client, editor, sensor["id"], version=f"v{i}") for i in range(5)
    ]
    # Publishing does not move a profile in the list.
    await act(client, editor, sensor["id"], created[3]["id"], "publish")
    created[3] = await get_profile(client, editor, sensor["id"], created[3]["id"])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await client.get(
            profiles_url(sensor["id"]), params=params, headers=viewer.headers
        )
        page = await expect(response, 200)
        pages += 1
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == created
    assert [p["version"] for p in seen] == ["v0", "v1", "v2", "v3", "v4"]


async def test_list_profiles_of_sensor_without_profiles_is_empty(client, viewer, sensor):
    response = await client.get(profiles_url(sensor["id"]), headers=viewer.headers)
    assert await expect(response, 200) == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        ({"limit": "0"}, 422, "validation_failed"),
        ({"limit": "501"}, 422, "validation_failed"),
        ({"sort": "name"}, 422, "validation_failed"),
    ],
)
async def test_list_profiles_with_bad_query_is_rejected(
    client, editor, sensor, params, status, code
):
    await create_profile(client, editor, sensor["id"])
    response = await client.get(profiles_url(sensor["id"]), params=params, headers=editor.headers)
    await assert_problem(response, status, code)


@pytest.mark.parametrize("action", ["get", "schedule", "publish", "deprecate"])
async def test_profile_under_another_sensors_path_is_not_found(
    client, editor, project_id, sensor, pgsql, clock, action
):
    other = await create_sensor(client, editor, project_id)
    profile = await create_profile(client, editor, other["id"])
    if action == "deprecate":
        await act(client, editor, other["id"], profile["id"], "publish")
        clock.advance(1)
    before = profile_row(pgsql, profile["id"])
    audited = audit_count(pgsql)

    if action == "get":
        response = await client.get(
            profile_url(sensor["id"], profile["id"]), headers=editor.headers
        )
    else:
        response = await action_request(
            client, editor, sensor["id"], profile["id"], action, clock.now + HOUR
        )

    await assert_problem(response, 404, "conversion_profile_not_found")
    assert profile_row(pgsql, profile["id"]) == before
    assert audit_count(pgsql) == audited
    assert profile_rows(pgsql, sensor["id"]) == []


async def test_unknown_profile_and_unknown_sensor_are_not_found(client, editor, sensor):
    response = await client.get(profile_url(sensor["id"], uuid.uuid4()), headers=editor.headers)
    await assert_problem(response, 404, "conversion_profile_not_found")
    missing = uuid.uuid4()
    for response in [
        await client.get(profiles_url(missing), headers=editor.headers),
        await client.get(profile_url(missing, uuid.uuid4()), headers=editor.headers),
        await client.post(
            profiles_url(missing),
            json={"version": "v", "kind": "linear", "payload": {"a": 1}},
            headers=editor.headers,
        ),
        await client.post(profile_url(missing, uuid.uuid4()) + "/publish", headers=editor.headers),
    ]:
        await assert_problem(response, 404, "sensor_not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sensors/not-a-uuid/conversion-profiles",
        "/api/v1/sensors/{sensor}/conversion-profiles/not-a-uuid",
        "/api/v1/sensors/{sensor}/conversion-profiles/12345/publish",
    ],
)
async def test_profile_route_with_invalid_uuid_is_not_found(client, editor, sensor, path):
    url = path.format(sensor=sensor["id"])
    if url.endswith("publish"):
        response = await client.post(url, headers=editor.headers)
    else:
        response = await client.get(url, headers=editor.headers)
    await assert_problem(response, 404, "not_found")


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


# --- who may do what ------------------------------------------------------------------------

WRITES = ("create", "schedule", "publish", "deprecate")
READS = ("list", "get")


async def profile_route(client, user, sensor_id, route, targets, clock):
    if route == "list":
        return await client.get(profiles_url(sensor_id), headers=user.headers)
    if route == "get":
        return await client.get(profile_url(sensor_id, targets["draft"]), headers=user.headers)
    if route == "create":
        return await client.post(
            profiles_url(sensor_id),
            json={"version": "by-route", "kind": "linear", "payload": {"a": 1}},
            headers=user.headers,
        )
    target = targets["active"] if route == "deprecate" else targets["draft"]
    return await action_request(client, user, sensor_id, target, route, clock.now + HOUR)


@pytest.fixture
async def targets(client, editor, sensor, clock):
    draft = await create_profile(client, editor, sensor["id"])
    active = await create_profile(client, editor, sensor["id"])
    await act(client, editor, sensor["id"], active["id"], "publish")
    clock.advance(1)
    return {"draft": draft["id"], "active": active["id"]}


@pytest.mark.parametrize("route", READS + WRITES)
@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
async def test_profile_route_as_home_member(
    client, auth_stub, project_id, sensor, targets, pgsql, clock, role, route
):
    user = auth_stub.member(project_id, role)
    before = profile_rows(pgsql, sensor["id"])
    audited = audit_count(pgsql)

    response = await profile_route(client, user, sensor["id"], route, targets, clock)

    if route in READS or role != "viewer":
        assert response.status == (201 if route == "create" else 200), await response.text()
        if route in WRITES:
            assert audit_count(pgsql) == audited + 1
            assert profile_rows(pgsql, sensor["id"]) != before
        return
    await assert_problem(response, 403, "forbidden")
    assert profile_rows(pgsql, sensor["id"]) == before
    assert audit_count(pgsql) == audited


@pytest.mark.parametrize("route", READS + WRITES)
@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
async def test_profile_route_as_member_of_a_shared_project(
    client, auth_stub, owner, project_id, sensor, targets, pgsql, clock, role, route
):
    shared = await share_sensor(client, auth_stub, owner, sensor)
    user = auth_stub.member(shared, role)
    before = profile_rows(pgsql, sensor["id"])
    audited = audit_count(pgsql)

    response = await profile_route(client, user, sensor["id"], route, targets, clock)

    if route in READS:
        body = await expect(response, 200)
        if route == "list":
            assert {p["id"] for p in body["items"]} == set(targets.values())
        return
    # Only the home project manages the sensor's profiles.
    await assert_problem(response, 403, "forbidden")
    assert profile_rows(pgsql, sensor["id"]) == before
    assert audit_count(pgsql) == audited


@pytest.mark.parametrize("route", READS + WRITES)
async def test_profile_route_as_stranger_hides_the_sensor(
    client, auth_stub, sensor, targets, pgsql, clock, route
):
    user = auth_stub.member(uuid.uuid4(), "owner")
    before = profile_rows(pgsql, sensor["id"])

    response = await profile_route(client, user, sensor["id"], route, targets, clock)

    problem = await assert_problem(response, 404, "sensor_not_found")
    assert targets["draft"] not in str(problem)
    assert profile_rows(pgsql, sensor["id"]) == before


async def test_profile_routes_without_token_are_unauthorized(client, sensor, targets):
    response = await client.get(profiles_url(sensor["id"]))
    await assert_problem(response, 401, "unauthorized")
    response = await client.post(profile_url(sensor["id"], targets["draft"]) + "/publish")
    await assert_problem(response, 401, "unauthorized")


# --- audit ----------------------------------------------------------------------------------


async def test_every_profile_change_is_audited_under_the_sensor(
    client, auth_stub, project_id, sensor, pgsql, clock
):
    owner = auth_stub.member(project_id, "owner")
    editor = auth_stub.member(project_id, "editor")
    sid = sensor["id"]
    profile = await create_profile(client, editor, sid, kind="linear", payload={"a": 3})
    scheduled = await act(
        client, owner, sid, profile["id"], "schedule", valid_from=clock.now + HOUR
    )
    clock.advance(10)
    published = await act(client, editor, sid, profile["id"], "publish")
    clock.advance(10)
    deprecated = await act(client, editor, sid, profile["id"], "deprecate")

    rows = audit_rows(pgsql, profile["id"])

    assert [row["action"] for row in rows] == [
        "conversion_profile.created",
        "conversion_profile.scheduled",
        "conversion_profile.activated",
        "conversion_profile.deprecated",
    ]
    for row in rows:
        assert row["entity_type"] == "conversion_profile"
        assert str(row["parent_id"]) == sid
        assert str(row["project_id"]) == str(project_id)
        assert row["request_id"]
    assert [(str(r["actor_id"]), r["actor_role"]) for r in rows] == [
        (str(editor.id), "editor"),
        (str(owner.id), "owner"),
        (str(editor.id), "editor"),
        (str(editor.id), "editor"),
    ]
    created, on_schedule, on_publish, on_deprecate = rows
    assert created["before"] is None
    assert created["after"]["payload"] == {"a": 3.0, "b": 0.0}
    assert created["after"]["status"] == "draft"
    assert on_schedule["before"]["status"] == "draft"
    assert on_schedule["after"]["status"] == "scheduled"
    assert on_schedule["after"]["valid_from"] == scheduled["valid_from"]
    assert on_publish["before"]["valid_from"] == scheduled["valid_from"]
    assert on_publish["after"]["valid_from"] == published["valid_from"]
    assert on_publish["after"]["status"] == "active"
    assert on_deprecate["after"]["status"] == "deprecated"
    assert on_deprecate["after"]["deprecated_at"] == deprecated["deprecated_at"]
    # The audit API finds them by entity type.
    response = await client.get(
        "/api/v1/audit",
        params={"project_id": str(project_id), "entity_type": "conversion_profile"},
        headers=owner.headers,
    )
    items = (await expect(response, 200))["items"]
    assert {item["action"] for item in items} == {row["action"] for row in rows}
    assert {item["parent_id"] for item in items} == {sid}


async def test_refused_changes_write_no_audit_rows(client, editor, viewer, sensor, pgsql, clock):
    profile = await create_profile(client, editor, sensor["id"])
    audited = audit_count(pgsql)

    for response in [
        await action_request(client, editor, sensor["id"], profile["id"], "deprecate"),
        await action_request(client, viewer, sensor["id"], profile["id"], "publish"),
        await action_request(client, editor, sensor["id"], profile["id"], "schedule", clock.now),
    ]:
        assert response.status in (403, 409, 422), await response.text()

    assert audit_count(pgsql) == audited
