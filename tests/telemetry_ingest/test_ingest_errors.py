"""Refused telemetry batches: sensor tokens at the door (rotation, grace, revocation), the rate
limit per token, and the per-sensor journal of refusals that project members can read (invalid
bodies: test_ingest_validation.py)."""

import secrets
import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.experiment.factories import create_experiment, create_run_in_status, expect, share_sensor
from tests.plugins.waiting import eventually
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import (
    accepted,
    all_ingest_errors,
    batch,
    create_sensor,
    ingest_errors,
    journal_rows,
    rate_limit,
    readings_at,
    refused,
    revoke_tokens,
    rotate_token,
    send,
    stored_counts,
    stored_records,
)

SECOND = timedelta(seconds=1)


@pytest.fixture
async def sensor(api, owner, project_id):
    return await create_sensor(api, owner, project_id)


# --- sensor tokens -------------------------------------------------------------------------------


def forged_token(sensor_id: str) -> str:
    """Well formed, naming the sensor, with a secret it never had."""
    return f"etps_{uuid.UUID(sensor_id).hex}_{secrets.token_urlsafe(32)}"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic {token}",
        "Token {token}",
        "{token}",
        "Bearer garbage",
        "Bearer etps_",
        "Bearer etps_0123_secret",
        "Bearer etps_{hex}",
        "Bearer etps_{hex}secret",
        "Bearer {token}x",
        "Bearer {forged}",
        "Bearer {user}",
    ],
)
async def test_batch_without_a_valid_sensor_token_is_unauthorized(
    api, ingest, owner, sensor, clock, pgsql, authorization
):
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(
            token=sensor["token"],
            hex=uuid.UUID(sensor["id"]).hex,
            forged=forged_token(sensor["id"]),
            user=owner.token,
        )

    response = await send(ingest, None, batch(sensor, readings_at(clock.now, 1)), headers=headers)

    await refused(response, pgsql, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="sensors"'
    # Nobody proved to be the sensor: nothing goes to its journal.
    assert await all_ingest_errors(api, owner, sensor["id"]) == []


async def test_scheme_is_case_insensitive(ingest, sensor, clock, pgsql):
    response = await send(
        ingest,
        None,
        batch(sensor, readings_at(clock.now, 1)),
        headers={"Authorization": f"bearer {sensor['token']}"},
    )

    await expect(response, 202)
    assert len(stored_records(pgsql, sensor["id"])) == 1


async def test_token_of_another_sensor_is_forbidden(
    api, ingest, owner, project_id, sensor, clock, pgsql
):
    other = await create_sensor(api, owner, project_id)

    response = await send(ingest, other["token"], batch(sensor, readings_at(clock.now, 1)))

    problem = await refused(response, pgsql, 403, "token_sensor_mismatch")
    # Journaled for the sensor that proved who it is, not for the one it named.
    (entry,) = await all_ingest_errors(api, owner, other["id"])
    assert (entry["status"], entry["code"], entry["request_id"]) == (
        403,
        "token_sensor_mismatch",
        problem["request_id"],
    )
    assert await all_ingest_errors(api, owner, sensor["id"]) == []


async def until_refused(ingest, token: str, sensor: dict[str, Any]) -> None:
    """Waits until the token is refused (the service hears of token changes asynchronously).
    Probes with an empty batch, which a valid token gets 422 for: nothing is stored meanwhile."""

    async def unauthorized():
        return (await send(ingest, token, batch(sensor, []))).status == 401

    await eventually(unauthorized)


async def test_token_rotated_without_grace_stops_working(api, ingest, owner, sensor, clock, pgsql):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    rotated = await rotate_token(api, owner, sensor["id"])
    await until_refused(ingest, sensor["token"], sensor)

    response = await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 2)))
    await refused(response, pgsql, 401, "invalid_token", stored=(1, 1))
    await accepted(ingest, rotated["token"], batch(sensor, readings_at(clock.now, 3)))
    assert [r["raw_value"] for r in stored_records(pgsql, sensor["id"])] == [1.0, 3.0]


async def test_token_rotated_with_grace_works_until_revoked(
    api, ingest, owner, sensor, clock, pgsql
):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))
    rotated = await rotate_token(api, owner, sensor["id"], grace_seconds=3600)

    async def new_token_works():
        response = await send(ingest, rotated["token"], batch(sensor, []))
        return response.status == 422

    await eventually(new_token_works)
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 2)))
    await accepted(ingest, rotated["token"], batch(sensor, readings_at(clock.now, 3)))

    await revoke_tokens(api, owner, sensor["id"])
    await until_refused(ingest, sensor["token"], sensor)
    await until_refused(ingest, rotated["token"], sensor)

    for token in (sensor["token"], rotated["token"]):
        response = await send(ingest, token, batch(sensor, readings_at(clock.now, 4)))
        await refused(response, pgsql, 401, "invalid_token", stored=(3, 3))
    assert [r["raw_value"] for r in stored_records(pgsql, sensor["id"])] == [1.0, 2.0, 3.0]


async def test_token_of_a_deleted_sensor_stops_working(api, ingest, owner, sensor, clock, pgsql):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    response = await api.delete(f"/api/v1/sensors/{sensor['id']}", headers=owner.headers)
    await expect(response, 204)
    await until_refused(ingest, sensor["token"], sensor)

    response = await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 2)))
    await refused(response, pgsql, 401, "invalid_token", stored=(1, 1))


# --- rate limit ----------------------------------------------------------------------------------


async def test_batch_past_the_burst_is_too_many_requests(
    api, ingest_app, owner, sensor, clock, pgsql
):
    ingest = await ingest_app(sensor_rate=0.001, sensor_burst=3)
    remaining = []
    for value in range(3):
        response = await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, value)))
        await expect(response, 202)
        limit, left, reset = rate_limit(response)
        assert limit == 3
        assert reset > 0
        remaining.append(left)
    assert remaining == [2, 1, 0]

    response = await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 9)))

    await refused(response, pgsql, 429, "too_many_requests", stored=(3, 3))
    assert int(response.headers["Retry-After"]) > 0
    limit, left, reset = rate_limit(response)
    assert (limit, left) == (3, 0)
    assert reset >= int(response.headers["Retry-After"])
    # Refused before the body is read: the journal does not keep it.
    assert await all_ingest_errors(api, owner, sensor["id"]) == []


async def test_every_token_has_its_own_bucket(
    api, ingest_app, owner, project_id, sensor, clock, pgsql
):
    ingest = await ingest_app(sensor_rate=0.001, sensor_burst=1)
    other = await create_sensor(api, owner, project_id)
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))
    response = await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 2)))
    await refused(response, pgsql, 429, "too_many_requests", stored=(1, 1))

    response = await send(ingest, other["token"], batch(other, readings_at(clock.now, 3)))

    await expect(response, 202)
    assert rate_limit(response)[:2] == (1, 0)
    assert len(stored_records(pgsql, other["id"])) == 1


async def test_refused_batches_count_and_carry_the_rate_limit_headers(
    api, ingest_app, owner, project_id, sensor, clock, pgsql
):
    ingest = await ingest_app(sensor_rate=0.001, sensor_burst=5, max_body_bytes=4096)
    other = await create_sensor(api, owner, project_id)
    experiment = await create_experiment(api, owner, project_id)
    unbound = await create_run_in_status(api, owner, experiment["id"], "running")
    big = batch(sensor, readings_at(clock.now, *range(200)))
    answers = [
        (await send(ingest, sensor["token"], batch(sensor, [])), 422),
        (await send(ingest, sensor["token"], b"{"), 400),
        (await send(ingest, sensor["token"], batch(other, readings_at(clock.now, 1))), 403),
        (
            await send(
                ingest,
                sensor["token"],
                batch(sensor, readings_at(clock.now, 1), run_id=unbound["id"]),
            ),
            409,
        ),
        (await send(ingest, sensor["token"], big), 413),
        (await send(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1))), 429),
    ]

    assert [response.status for response, _ in answers] == [status for _, status in answers]
    assert [rate_limit(response)[:2] for response, _ in answers] == [
        (5, 4),
        (5, 3),
        (5, 2),
        (5, 1),
        (5, 0),
        (5, 0),
    ]
    assert stored_counts(pgsql) == (0, 0)


async def test_unauthorized_answer_has_no_rate_limit_headers(ingest, sensor, clock):
    # Limits are per token: one that is not valid has no bucket to report on.
    response = await send(ingest, "garbage", batch(sensor, readings_at(clock.now, 1)))

    await assert_problem(response, 401, "invalid_token")
    assert "RateLimit-Remaining" not in response.headers


# --- the ingest error journal --------------------------------------------------------------------


async def test_refusal_is_journaled_with_what_was_wrong(
    api, ingest, owner, project_id, auth_stub, sensor, clock
):
    experiment = await create_experiment(api, owner, project_id)
    run = await create_run_in_status(api, owner, experiment["id"], "running")
    viewer = auth_stub.member(project_id, "viewer")

    response = await send(
        ingest,
        sensor["token"],
        batch(sensor, readings_at(clock.now, 1, 2), run_id=run["id"], batch_id="b-3"),
    )

    problem = await assert_problem(response, 409, "sensor_not_bound")
    page = await ingest_errors(api, viewer, sensor["id"])
    assert page["next_cursor"] is None
    (entry,) = page["items"]
    assert entry == {
        "id": entry["id"],
        "sensor_id": sensor["id"],
        "at": entry["at"],
        "status": 409,
        "code": "sensor_not_bound",
        "detail": problem["detail"],
        "batch_id": "b-3",
        "readings": 2,
        "rejected": 0,
        "errors": [],
        "request_id": response.headers["X-Request-Id"],
    }
    assert isinstance(entry["id"], int)


async def test_accepted_batches_are_not_journaled(api, ingest, owner, sensor, clock, pgsql):
    await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    assert await all_ingest_errors(api, owner, sensor["id"]) == []
    assert journal_rows(pgsql) == []


async def test_journal_lists_newest_first_in_pages(api, ingest, auth_stub, project_id, sensor):
    for index in range(5):
        response = await send(ingest, sensor["token"], batch(sensor, [], batch_id=f"b-{index}"))
        await assert_problem(response, 422, "validation_failed")
    viewer = auth_stub.member(project_id, "viewer")

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await ingest_errors(api, viewer, sensor["id"], **params)
        pages += 1
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert [entry["batch_id"] for entry in seen] == ["b-4", "b-3", "b-2", "b-1", "b-0"]
    ids = [entry["id"] for entry in seen]
    assert ids == sorted(ids, reverse=True)


async def test_journal_is_readable_in_every_project_of_the_sensor(
    api, ingest, owner, auth_stub, sensor
):
    shared = await share_sensor(api, auth_stub, owner, sensor)
    shared_owner = auth_stub.member(shared, "owner")
    await assert_problem(await send(ingest, sensor["token"], b"{"), 400, "malformed_json")

    for user in (auth_stub.member(shared, "viewer"), shared_owner):
        (entry,) = await all_ingest_errors(api, user, sensor["id"])
        assert entry["code"] == "malformed_json"


async def test_journal_is_hidden_from_strangers(api, ingest, auth_stub, sensor):
    await assert_problem(await send(ingest, sensor["token"], b"{"), 400, "malformed_json")
    stranger = auth_stub.member(uuid.uuid4(), "owner")

    response = await api.get(
        f"/api/v1/sensors/{sensor['id']}/ingest-errors", headers=stranger.headers
    )

    await assert_problem(response, 404, "sensor_not_found")


async def test_journal_of_an_unknown_sensor_is_not_found(api, owner):
    response = await api.get(f"/api/v1/sensors/{uuid.uuid4()}/ingest-errors", headers=owner.headers)

    await assert_problem(response, 404, "sensor_not_found")


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"limit": "0"}, 422, "validation_failed"),
        ({"limit": "501"}, 422, "validation_failed"),
        ({"status": "422"}, 422, "validation_failed"),
        ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
    ],
)
async def test_journal_query_is_checked(api, owner, sensor, params, status, code):
    response = await api.get(
        f"/api/v1/sensors/{sensor['id']}/ingest-errors", params=params, headers=owner.headers
    )

    await assert_problem(response, status, code)


async def test_journals_are_kept_per_sensor(api, ingest, owner, project_id, sensor):
    other = await create_sensor(api, owner, project_id)
    await assert_problem(await send(ingest, sensor["token"], b"{"), 400, "malformed_json")
    await assert_problem(
        await send(ingest, other["token"], batch(other, [])), 422, "validation_failed"
    )

    assert [e["code"] for e in await all_ingest_errors(api, owner, sensor["id"])] == [
        "malformed_json"
    ]
    assert [e["code"] for e in await all_ingest_errors(api, owner, other["id"])] == [
        "validation_failed"
    ]


async def test_journal_keeps_only_the_newest_journal_size_entries(
    api, ingest_app, owner, sensor, pgsql
):
    ingest = await ingest_app(journal_size=3)
    for index in range(6):
        response = await send(ingest, sensor["token"], batch(sensor, [], batch_id=f"b-{index}"))
        await assert_problem(response, 422, "validation_failed")

    entries = await all_ingest_errors(api, owner, sensor["id"])

    assert [entry["batch_id"] for entry in entries] == ["b-5", "b-4", "b-3"]


async def test_journal_drops_the_oldest_entries(api, ingest_app, owner, sensor):
    ingest = await ingest_app(journal_size=3)
    for index in range(8):
        response = await send(ingest, sensor["token"], batch(sensor, [], batch_id=f"b-{index}"))
        await assert_problem(response, 422, "validation_failed")

    entries = await all_ingest_errors(api, owner, sensor["id"])

    batch_ids = [entry["batch_id"] for entry in entries]
    assert batch_ids[:3] == ["b-7", "b-6", "b-5"]
    assert "b-0" not in batch_ids
