"""Sensor tokens: shown once, stored only as SHA-256 digests, rotated with or without a grace
period, revoked all at once, managed only by owners of the sensor's home project."""

import asyncio
import hashlib
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from backend_common import sensor_tokens
from tests.experiment.factories import (
    audit_rows,
    create_experiment,
    create_run_in_status,
    expect,
)
from tests.problems import assert_problem
from tests.tokens import SigningKey

SENSORS = "/api/v1/sensors"
TOKEN_FORMAT = r"etps_{hex}_[A-Za-z0-9_-]{{43}}"
WEEK = 7 * 24 * 3600


def sensor_url(sensor_id: str) -> str:
    return f"{SENSORS}/{sensor_id}"


async def create_sensor(client, user, project_id, **overrides: Any) -> dict[str, Any]:
    body = {
        "project_id": str(project_id),
        "name": f"sensor {uuid.uuid4().hex[:8]}",
        "type": "thermocouple",
        "input_unit": "mV",
        "display_unit": "degC",
        **overrides,
    }
    return await expect(await client.post(SENSORS, json=body, headers=user.headers), 201)


async def rotate(client, user, sensor_id: str, *, status: int = 200, **body: Any) -> Any:
    response = await client.post(
        sensor_url(sensor_id) + "/rotate-token", json=body, headers=user.headers
    )
    return await expect(response, status)


async def revoke(client, user, sensor_id: str, *, status: int = 200) -> Any:
    response = await client.post(sensor_url(sensor_id) + "/revoke-token", headers=user.headers)
    return await expect(response, status)


async def get_sensor(client, user, sensor_id: str) -> dict[str, Any]:
    return await expect(await client.get(sensor_url(sensor_id), headers=user.headers), 200)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_rows(pgsql, sensor_id: str) -> list[dict[str, Any]]:
    """The stored tokens of a sensor, oldest first, digests as bytes."""
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT token_hash, preview, created_at, expires_at, last_used_at FROM sensor_tokens"
            " WHERE sensor_id = %s ORDER BY created_at, token_hash",
            (sensor_id,),
        )
        return [{**row, "token_hash": bytes(row["token_hash"])} for row in cursor]


def stored_digests(pgsql, sensor_id: str) -> set[bytes]:
    return {row["token_hash"] for row in token_rows(pgsql, sensor_id)}


def tables_holding(pgsql, text: str) -> list[str]:
    """The tables with a row whose text holds `text` as is or hex-encoded (as bytea shows it)."""
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [name for (name,) in cursor.fetchall()]
        found = []
        for table in tables:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" t'
                " WHERE strpos(t::text, %s) > 0 OR strpos(t::text, %s) > 0",
                (text, text.encode().hex()),
            )
            if cursor.fetchone()[0]:
                found.append(table)
        return found


def action_rows(pgsql, sensor_id: str, action: str) -> list[dict[str, Any]]:
    return [row for row in audit_rows(pgsql, sensor_id) if row["action"] == action]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- the token as shown --------------------------------------------------------------------------


async def test_created_token_names_the_sensor_and_previews_its_last_characters(
    client, editor, project_id
):
    response = await client.post(
        SENSORS,
        json={
            "project_id": str(project_id),
            "name": "Inlet",
            "type": "pressure",
            "input_unit": "V",
            "display_unit": "kPa",
        },
        headers=editor.headers,
    )
    sensor = await expect(response, 201)

    token = sensor["token"]
    assert re.fullmatch(TOKEN_FORMAT.format(hex=uuid.UUID(sensor["id"]).hex), token), token
    assert sensor_tokens.sensor_of(token) == uuid.UUID(sensor["id"])
    assert sensor["token_preview"] == "…" + token[-4:]
    assert sensor["token_created_at"] is not None
    assert sensor["token_last_used_at"] is None
    assert sensor["grace_tokens"] == []
    assert response.headers["Cache-Control"] == "no-store"


async def test_tokens_of_two_sensors_differ_and_name_their_own_sensor(client, editor, project_id):
    first = await create_sensor(client, editor, project_id)
    second = await create_sensor(client, editor, project_id)

    assert first["token"] != second["token"]
    assert sensor_tokens.sensor_of(first["token"]) == uuid.UUID(first["id"])
    assert sensor_tokens.sensor_of(second["token"]) == uuid.UUID(second["id"])


async def test_token_is_shown_only_on_creation_and_rotation(client, owner, project_id, auth_stub):
    sensor = await create_sensor(client, owner, project_id)
    created_token = sensor["token"]
    url = sensor_url(sensor["id"])
    viewer = auth_stub.member(project_id, "viewer")

    experiment = await create_experiment(client, owner, project_id)
    run = await create_run_in_status(client, owner, experiment["id"], "running")
    bound = await client.post(
        f"/api/v1/runs/{run['id']}/sensors", json={"sensor_id": sensor["id"]}, headers=owner.headers
    )
    assert bound.status == 201, await bound.text()
    reads = [
        bound,
        await client.get(f"/api/v1/runs/{run['id']}/sensors", headers=viewer.headers),
        await client.get(url, headers=viewer.headers),
        await client.get(SENSORS, params={"project_id": str(project_id)}, headers=viewer.headers),
        await client.get(url + "/projects", headers=viewer.headers),
        await client.patch(url, json={"description": "d"}, headers=owner.headers),
    ]
    for response in reads:
        assert response.status in (200, 201), await response.text()
        text = await response.text()
        assert created_token not in text
        assert '"token"' not in text

    rotation = await client.post(url + "/rotate-token", json={}, headers=owner.headers)
    rotated = await expect(rotation, 200)
    assert rotation.headers["Cache-Control"] == "no-store"
    assert rotated["token"] != created_token
    assert rotated["token_preview"] == "…" + rotated["token"][-4:]

    revoked = await client.post(url + "/revoke-token", headers=owner.headers)
    text = await revoked.text()
    assert revoked.status == 200, text
    assert '"token"' not in text
    assert rotated["token"] not in text
    assert '"token"' not in await (await client.get(url, headers=viewer.headers)).text()


# --- what is stored ------------------------------------------------------------------------------


async def test_only_the_sha256_of_the_token_is_stored(client, editor, project_id, pgsql):
    sensor = await create_sensor(client, editor, project_id)
    token = sensor["token"]

    rows = token_rows(pgsql, sensor["id"])

    assert len(rows) == 1
    assert rows[0]["token_hash"] == digest(token)
    assert rows[0]["preview"] == "…" + token[-4:]
    assert rows[0]["expires_at"] is None
    assert rows[0]["last_used_at"] is None
    secret = token[len("etps_") + 33 :]
    assert tables_holding(pgsql, token) == []
    assert tables_holding(pgsql, secret) == []


async def test_rotated_token_is_stored_only_as_its_digest(client, owner, project_id, pgsql):
    sensor = await create_sensor(client, owner, project_id)

    rotated = await rotate(client, owner, sensor["id"], grace_seconds=60)

    assert stored_digests(pgsql, sensor["id"]) == {
        digest(sensor["token"]),
        digest(rotated["token"]),
    }
    assert tables_holding(pgsql, sensor["token"]) == []
    assert tables_holding(pgsql, rotated["token"]) == []


# --- rotation ------------------------------------------------------------------------------------


async def test_rotation_without_grace_replaces_the_token_at_once(client, owner, project_id, pgsql):
    sensor = await create_sensor(client, owner, project_id)

    rotated = await rotate(client, owner, sensor["id"])

    assert rotated["token"] != sensor["token"]
    assert sensor_tokens.sensor_of(rotated["token"]) == uuid.UUID(sensor["id"])
    assert rotated["token_preview"] == "…" + rotated["token"][-4:]
    assert rotated["grace_tokens"] == []
    current = [row for row in token_rows(pgsql, sensor["id"]) if row["expires_at"] is None]
    assert [row["token_hash"] for row in current] == [digest(rotated["token"])]
    assert sensor_tokens.matches(sensor["token"], [row["token_hash"] for row in current]) is None
    shown = await get_sensor(client, owner, sensor["id"])
    assert (shown["token_preview"], shown["grace_tokens"]) == (rotated["token_preview"], [])


# Retiring and forgetting digests is one statement (an UPDATE in a WITH, then a DELETE of the
# rows it updated); PostgreSQL silently skips deleting rows that the same statement updated, so
# digests that should be forgotten stay behind with expires_at set.


async def test_rotation_without_grace_deletes_the_old_digest(client, owner, project_id, pgsql):
    sensor = await create_sensor(client, owner, project_id)

    rotated = await rotate(client, owner, sensor["id"])

    rows = token_rows(pgsql, sensor["id"])
    assert [(row["token_hash"], row["expires_at"]) for row in rows] == [
        (digest(rotated["token"]), None)
    ]


async def test_rotation_without_body_deletes_the_old_digest(client, owner, project_id, pgsql):
    sensor = await create_sensor(client, owner, project_id)

    response = await client.post(sensor_url(sensor["id"]) + "/rotate-token", headers=owner.headers)
    rotated = await expect(response, 200)

    assert rotated["grace_tokens"] == []
    assert stored_digests(pgsql, sensor["id"]) == {digest(rotated["token"])}


async def test_rotation_without_body_has_no_grace(client, owner, project_id, pgsql, clock):
    sensor = await create_sensor(client, owner, project_id)

    response = await client.post(sensor_url(sensor["id"]) + "/rotate-token", headers=owner.headers)
    rotated = await expect(response, 200)

    assert rotated["grace_tokens"] == []
    old = [row for row in token_rows(pgsql, sensor["id"]) if row["expires_at"] is not None]
    # Whether or not the old digest is still stored, it expired at the rotation.
    assert all(row["expires_at"] <= clock.now for row in old)
    assert [row["token_hash"] for row in old] in ([], [digest(sensor["token"])])


async def test_rotation_with_grace_keeps_old_digest_until_it_expires(
    client, owner, project_id, pgsql, clock
):
    sensor = await create_sensor(client, owner, project_id)
    rotated_at = clock.now

    rotated = await rotate(client, owner, sensor["id"], grace_seconds=300)

    expires_at = rotated_at + timedelta(seconds=300)
    rows = {row["token_hash"]: row for row in token_rows(pgsql, sensor["id"])}
    assert set(rows) == {digest(sensor["token"]), digest(rotated["token"])}
    assert rows[digest(sensor["token"])]["expires_at"] == expires_at
    assert rows[digest(rotated["token"])]["expires_at"] is None
    (grace,) = rotated["grace_tokens"]
    assert grace["token_preview"] == sensor["token_preview"]
    assert instant(grace["expires_at"]) == expires_at
    assert instant(grace["created_at"]) == instant(sensor["token_created_at"])
    assert grace["last_used_at"] is None
    assert rotated["token_preview"] == "…" + rotated["token"][-4:]

    clock.now = expires_at - timedelta(microseconds=1)
    assert len((await get_sensor(client, owner, sensor["id"]))["grace_tokens"]) == 1

    clock.now = expires_at
    shown = await get_sensor(client, owner, sensor["id"])
    assert shown["grace_tokens"] == []
    assert shown["token_preview"] == rotated["token_preview"]
    listed = await expect(
        await client.get(SENSORS, params={"project_id": str(project_id)}, headers=owner.headers),
        200,
    )
    assert listed["items"][0]["grace_tokens"] == []


async def test_rotating_again_during_grace_keeps_both_old_tokens_in_grace(
    client, owner, project_id, pgsql, clock
):
    sensor = await create_sensor(client, owner, project_id)
    first_rotation_at = clock.now
    second = await rotate(client, owner, sensor["id"], grace_seconds=120)
    clock.advance(60)
    second_rotation_at = clock.now

    third = await rotate(client, owner, sensor["id"], grace_seconds=600)

    first_expiry = first_rotation_at + timedelta(seconds=120)
    second_expiry = second_rotation_at + timedelta(seconds=600)
    assert [(g["token_preview"], instant(g["expires_at"])) for g in third["grace_tokens"]] == [
        (second["token_preview"], second_expiry),
        (sensor["token_preview"], first_expiry),
    ]
    expiries = {row["token_hash"]: row["expires_at"] for row in token_rows(pgsql, sensor["id"])}
    assert expiries == {
        digest(sensor["token"]): first_expiry,
        digest(second["token"]): second_expiry,
        digest(third["token"]): None,
    }

    clock.now = first_expiry
    shown = await get_sensor(client, owner, sensor["id"])
    assert [g["token_preview"] for g in shown["grace_tokens"]] == [second["token_preview"]]
    assert shown["token_preview"] == third["token_preview"]


async def test_shorter_grace_cuts_the_grace_of_earlier_tokens(
    client, owner, project_id, pgsql, clock
):
    sensor = await create_sensor(client, owner, project_id)
    await rotate(client, owner, sensor["id"], grace_seconds=3600)
    clock.advance(10)

    latest = await rotate(client, owner, sensor["id"], grace_seconds=60)

    cut_to = clock.now + timedelta(seconds=60)
    assert [instant(g["expires_at"]) for g in latest["grace_tokens"]] == [cut_to, cut_to]
    expiries = sorted(
        (row["expires_at"] for row in token_rows(pgsql, sensor["id"]) if row["expires_at"]),
    )
    assert expiries == [cut_to, cut_to]


async def test_rotation_without_grace_during_grace_ends_every_old_token_now(
    client, owner, project_id, pgsql, clock
):
    sensor = await create_sensor(client, owner, project_id)
    middle = await rotate(client, owner, sensor["id"], grace_seconds=3600)
    clock.advance(5)

    latest = await rotate(client, owner, sensor["id"], grace_seconds=0)

    assert latest["grace_tokens"] == []
    rows = token_rows(pgsql, sensor["id"])
    current = [row["token_hash"] for row in rows if row["expires_at"] is None]
    assert current == [digest(latest["token"])]
    old = {row["token_hash"]: row["expires_at"] for row in rows if row["expires_at"] is not None}
    assert set(old) <= {digest(sensor["token"]), digest(middle["token"])}
    assert all(expires_at <= clock.now for expires_at in old.values())
    shown = await get_sensor(client, owner, sensor["id"])
    assert (shown["token_preview"], shown["grace_tokens"]) == (latest["token_preview"], [])


async def test_rotation_without_grace_during_grace_drops_every_old_digest(
    client, owner, project_id, pgsql, clock
):
    sensor = await create_sensor(client, owner, project_id)
    await rotate(client, owner, sensor["id"], grace_seconds=3600)
    clock.advance(5)

    latest = await rotate(client, owner, sensor["id"], grace_seconds=0)

    assert latest["grace_tokens"] == []
    assert stored_digests(pgsql, sensor["id"]) == {digest(latest["token"])}


async def test_rotation_forgets_grace_digests_that_have_expired(
    client, owner, project_id, pgsql, clock
):
    sensor = await create_sensor(client, owner, project_id)
    middle = await rotate(client, owner, sensor["id"], grace_seconds=10)
    clock.advance(20)

    latest = await rotate(client, owner, sensor["id"], grace_seconds=300)

    expiries = {row["token_hash"]: row["expires_at"] for row in token_rows(pgsql, sensor["id"])}
    assert expiries == {
        digest(middle["token"]): clock.now + timedelta(seconds=300),
        digest(latest["token"]): None,
    }
    assert [g["token_preview"] for g in latest["grace_tokens"]] == [middle["token_preview"]]


async def test_rotation_with_the_longest_grace_is_accepted(client, owner, project_id, pgsql, clock):
    sensor = await create_sensor(client, owner, project_id)

    rotated = await rotate(client, owner, sensor["id"], grace_seconds=WEEK)

    (grace,) = rotated["grace_tokens"]
    assert instant(grace["expires_at"]) == clock.now + timedelta(days=7)
    assert len(token_rows(pgsql, sensor["id"])) == 2


@pytest.mark.parametrize(
    "grace",
    [-1, WEEK + 1, 10**12, 1.5, "soon", None, [60], True, "60"],
    ids=lambda value: repr(value),
)
async def test_rotation_with_invalid_grace_is_rejected(client, owner, project_id, pgsql, grace):
    sensor = await create_sensor(client, owner, project_id)
    audited = len(audit_rows(pgsql, sensor["id"]))

    response = await client.post(
        sensor_url(sensor["id"]) + "/rotate-token",
        json={"grace_seconds": grace},
        headers=owner.headers,
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["grace_seconds"]
    assert stored_digests(pgsql, sensor["id"]) == {digest(sensor["token"])}
    assert len(audit_rows(pgsql, sensor["id"])) == audited


async def test_rotation_with_unknown_field_is_rejected(client, owner, project_id, pgsql):
    sensor = await create_sensor(client, owner, project_id)

    response = await client.post(
        sensor_url(sensor["id"]) + "/rotate-token", json={"grace": 60}, headers=owner.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["grace"]
    assert stored_digests(pgsql, sensor["id"]) == {digest(sensor["token"])}


async def test_concurrent_rotations_leave_exactly_one_current_token(
    client, owner, project_id, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    url = sensor_url(sensor["id"]) + "/rotate-token"

    responses = await asyncio.gather(
        *(client.post(url, json={}, headers=owner.headers) for _ in range(8))
    )

    tokens = [(await expect(response, 200))["token"] for response in responses]
    assert len(set(tokens)) == 8
    rows = token_rows(pgsql, sensor["id"])
    current = [row for row in rows if row["expires_at"] is None]
    assert len(current) == 1
    assert current[0]["token_hash"] in {digest(token) for token in tokens}
    shown = await get_sensor(client, owner, sensor["id"])
    assert shown["token_preview"] == current[0]["preview"]
    assert shown["grace_tokens"] == []
    assert len(action_rows(pgsql, sensor["id"], "sensor.token_rotated")) == 8


# --- revocation ----------------------------------------------------------------------------------


async def test_revoke_removes_every_digest_and_rotation_issues_a_new_token(
    client, owner, project_id, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    rotated = await rotate(client, owner, sensor["id"], grace_seconds=3600)
    assert len(token_rows(pgsql, sensor["id"])) == 2

    revoked = await revoke(client, owner, sensor["id"])

    assert token_rows(pgsql, sensor["id"]) == []
    assert revoked["token_preview"] is None
    assert revoked["token_created_at"] is None
    assert revoked["token_last_used_at"] is None
    assert revoked["grace_tokens"] == []
    assert "token" not in revoked
    shown = await get_sensor(client, owner, sensor["id"])
    assert shown["token_preview"] is None
    assert shown["grace_tokens"] == []

    renewed = await rotate(client, owner, sensor["id"])

    rows = token_rows(pgsql, sensor["id"])
    assert [(row["token_hash"], row["expires_at"]) for row in rows] == [
        (digest(renewed["token"]), None)
    ]
    assert renewed["token"] not in (sensor["token"], rotated["token"])
    assert sensor_tokens.sensor_of(renewed["token"]) == uuid.UUID(sensor["id"])
    assert sensor_tokens.matches(renewed["token"], [row["token_hash"] for row in rows])
    assert renewed["token_preview"] == "…" + renewed["token"][-4:]
    assert renewed["grace_tokens"] == []


async def test_revoking_a_sensor_without_tokens_changes_nothing_more(
    client, owner, project_id, pgsql
):
    sensor = await create_sensor(client, owner, project_id)
    await revoke(client, owner, sensor["id"])

    again = await revoke(client, owner, sensor["id"])

    assert again["token_preview"] is None
    assert token_rows(pgsql, sensor["id"]) == []
    assert len(action_rows(pgsql, sensor["id"], "sensor.token_revoked")) == 2


# --- who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["rotate", "revoke"])
@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_token_change_below_owner_is_forbidden(
    client, owner, project_id, auth_stub, pgsql, role, action
):
    sensor = await create_sensor(client, owner, project_id)
    user = auth_stub.member(project_id, role)
    audited = len(audit_rows(pgsql, sensor["id"]))

    response = await client.post(
        sensor_url(sensor["id"]) + f"/{action}-token", json={}, headers=user.headers
    )

    await assert_problem(response, 403, "forbidden")
    assert stored_digests(pgsql, sensor["id"]) == {digest(sensor["token"])}
    assert len(audit_rows(pgsql, sensor["id"])) == audited


@pytest.mark.parametrize("action", ["rotate", "revoke"])
async def test_token_change_by_owner_of_a_shared_project_only_is_forbidden(
    client, owner, project_id, auth_stub, pgsql, action
):
    sensor = await create_sensor(client, owner, project_id)
    shared = uuid.uuid4()
    auth_stub.grant(owner, shared, "owner")
    await expect(
        await client.post(
            sensor_url(sensor["id"]) + "/projects",
            json={"project_id": str(shared)},
            headers=owner.headers,
        ),
        201,
    )
    other_owner = auth_stub.member(shared, "owner")

    response = await client.post(
        sensor_url(sensor["id"]) + f"/{action}-token", json={}, headers=other_owner.headers
    )

    await assert_problem(response, 403, "forbidden")
    assert stored_digests(pgsql, sensor["id"]) == {digest(sensor["token"])}


@pytest.mark.parametrize("action", ["rotate", "revoke"])
async def test_token_change_by_a_stranger_is_not_found(
    client, owner, project_id, auth_stub, pgsql, action
):
    sensor = await create_sensor(client, owner, project_id)
    stranger = auth_stub.member(uuid.uuid4(), "owner")

    response = await client.post(
        sensor_url(sensor["id"]) + f"/{action}-token", json={}, headers=stranger.headers
    )

    await assert_problem(response, 404, "sensor_not_found")
    assert stored_digests(pgsql, sensor["id"]) == {digest(sensor["token"])}


@pytest.mark.parametrize("action", ["rotate", "revoke"])
async def test_token_change_of_unknown_sensor_is_not_found(client, owner, action):
    response = await client.post(
        sensor_url(str(uuid.uuid4())) + f"/{action}-token", json={}, headers=owner.headers
    )

    await assert_problem(response, 404, "sensor_not_found")


@pytest.mark.parametrize("kind", ["missing", "forged", "expired"])
@pytest.mark.parametrize("action", ["rotate", "revoke"])
async def test_token_change_without_valid_bearer_is_unauthorized(
    client, owner, project_id, auth_signing_key, pgsql, action, kind
):
    sensor = await create_sensor(client, owner, project_id)
    if kind == "missing":
        headers = {}
    elif kind == "forged":
        forger = SigningKey.generate(kid=auth_signing_key.kid)
        headers = {"Authorization": f"Bearer {forger.mint(str(owner.id))}"}
    else:
        headers = {"Authorization": f"Bearer {auth_signing_key.mint(str(owner.id), ttl=-100)}"}

    response = await client.post(
        sensor_url(sensor["id"]) + f"/{action}-token", json={}, headers=headers
    )

    await assert_problem(response, 401, "unauthorized")
    assert stored_digests(pgsql, sensor["id"]) == {digest(sensor["token"])}
    assert [row["action"] for row in audit_rows(pgsql, sensor["id"])] == ["sensor.created"]


# --- audit ---------------------------------------------------------------------------------------


async def test_rotation_and_revocation_audit_only_the_preview(client, owner, project_id, pgsql):
    sensor = await create_sensor(client, owner, project_id)
    rotated = await rotate(client, owner, sensor["id"], grace_seconds=90)
    await revoke(client, owner, sensor["id"])

    rows = audit_rows(pgsql, sensor["id"])

    assert [row["action"] for row in rows] == [
        "sensor.created",
        "sensor.token_rotated",
        "sensor.token_revoked",
    ]
    _, rotation, revocation = rows
    for row in (rotation, revocation):
        assert row["entity_type"] == "sensor"
        assert row["project_id"] == str(project_id)
        assert row["actor_id"] == str(owner.id)
        assert row["actor_role"] == "owner"
        assert row["before"] is None
    assert rotation["after"] == {"token_preview": rotated["token_preview"], "grace_seconds": 90}
    assert revocation["after"] == {"token_preview": None}
    for token in (sensor["token"], rotated["token"]):
        assert "audit_log" not in tables_holding(pgsql, token)
        assert token[-12:] not in str(rows)
