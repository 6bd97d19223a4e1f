"""Helpers of the backfill tests: publishing a profile from a past start, the backfill as the
API shows it, the jobs that carry it out, and the readings' conversions as stored."""

from datetime import datetime
from typing import Any

from aiohttp.test_utils import TestClient

from experiment_service.app import JOB_RUNNER
from telemetry_ingest_service.appkeys import JOB_RUNNER as INGEST_JOB_RUNNER
from tests.experiment.factories import expect
from tests.plugins.auth_stub import StubUser

SENSORS = "/api/v1/sensors"


def backfill_request(
    api: TestClient, user: StubUser, sensor_id: Any, profile_id: Any, valid_from: datetime
) -> Any:
    return api.post(
        f"{SENSORS}/{sensor_id}/conversion-profiles/{profile_id}/publish?backfill=true",
        json={"valid_from": valid_from.isoformat()},
        headers=user.headers,
    )


async def backfill_publish(
    api: TestClient,
    user: StubUser,
    sensor_id: Any,
    profile: dict[str, Any],
    valid_from: datetime,
) -> dict[str, Any]:
    """Creates the profile and publishes it from `valid_from` with a backfill."""
    url = f"{SENSORS}/{sensor_id}/conversion-profiles"
    created = await expect(await api.post(url, json=profile, headers=user.headers), 201)
    return await expect(
        await backfill_request(api, user, sensor_id, created["id"], valid_from), 200
    )


async def get_backfill(
    api: TestClient, user: StubUser, backfill_id: Any, status: int = 200
) -> dict[str, Any]:
    return await expect(
        await api.get(f"/api/v1/backfills/{backfill_id}", headers=user.headers), status
    )


async def run_backfills(ingest: TestClient, clock: Any) -> dict[str, Any]:
    """The telemetry jobs due a minute on, the backfill among them; what the backfill did."""
    clock.advance(60)
    outcomes = await ingest.app[INGEST_JOB_RUNNER].run_due()
    found = [o for o in outcomes if o.name == "telemetry.conversion_backfill"]
    assert found, outcomes
    assert found[0].status == "succeeded", outcomes
    return dict(found[0].result)


async def announce(api: TestClient, clock: Any) -> dict[str, Any]:
    """The experiment jobs due a minute on; what the announcing one did."""
    clock.advance(60)
    outcomes = await api.app[JOB_RUNNER].run_due()
    found = [o for o in outcomes if o.name == "conversion_backfills.announce"]
    assert found, outcomes
    assert found[0].status == "succeeded", outcomes
    return dict(found[0].result)


def conversions(pgsql: Any, sensor_id: Any) -> list[tuple[Any, ...]]:
    """(timestamp, status, physical value, profile id) of the sensor's readings, by time."""
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            'SELECT "timestamp", conversion_status, physical_value, profile_id::text'
            ' FROM telemetry_records WHERE sensor_id = %s ORDER BY "timestamp", batch_id, seq',
            (str(sensor_id),),
        )
        return [tuple(row) for row in cursor]


def events_of(pgsql: Any, event_type: str) -> list[dict[str, Any]]:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT project_id, payload FROM webhook_events WHERE type = %s ORDER BY created_at",
            (event_type,),
        )
        return [dict(row) for row in cursor]
