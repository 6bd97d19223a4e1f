"""Conversion profiles of a sensor: payloads per kind, a first profile at sensor creation, and
reading them."""

import uuid

import pytest

from tests.experiment.factories import audit_count, expect
from tests.experiment.profile_kit import (
    HOUR,
    act,
    action_request,
    create_profile,
    create_sensor,
    get_profile,
    get_sensor,
    profile_row,
    profile_rows,
    profile_url,
    profiles_url,
)
from tests.problems import assert_problem


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
