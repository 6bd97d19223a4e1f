"""Helpers of the conversion-profile tests: requests to a sensor's profiles, the profiles as stored,
and the soundness of a sensor's validity timeline."""

import itertools
import uuid
from datetime import datetime, timedelta

from tests.experiment.factories import audit_rows, expect

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
