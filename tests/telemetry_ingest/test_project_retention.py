"""The job `telemetry.project_retention` on the test's clock: a project keeps its sensors' raw
readings for fewer days than their per-minute rollup; past the raw retention, whole-minute
aggregates still come from the rollup; readings wait for the refresher; a late reading for a
minute past the raw retention leaves that minute's rollup alone."""

import uuid
from datetime import timedelta

from backend_common.keys import DATABASE
from telemetry_ingest_service.appkeys import JOB_RUNNER
from telemetry_ingest_service.domain.rollup import Rollup, minute_floor
from tests.experiment.factories import expect
from tests.telemetry_ingest.ingest_api import batch, bearer, create_sensor, reading
from tests.telemetry_ingest.readings_api import AGGREGATE, HISTORY, get, query

DAY = timedelta(days=1)


async def send(ingest, sensor, *instants) -> None:
    response = await ingest.post(
        "/api/v1/telemetry",
        json=batch(sensor, [reading(at, 1.0 + n) for n, at in enumerate(instants)]),
        headers=bearer(sensor["token"]),
    )
    assert response.status == 202, await response.text()


async def retention(ingest) -> dict:
    outcomes = {o.name: o for o in await ingest.app[JOB_RUNNER].run_due()}
    return dict(outcomes["telemetry.project_retention"].result)


async def timestamps(ingest, user, sensor) -> list[str]:
    page = await get(ingest, user, HISTORY, [*query([sensor]), ("limit", "100")])
    return sorted(item["timestamp"] for item in page["items"])


async def minute_counts(ingest, user, sensor, start) -> list[int]:
    params = query([sensor], start=start, end=start + timedelta(minutes=1), bucket="1m")
    answer = await get(ingest, user, AGGREGATE, [*params, ("layer", "raw")])
    return [bucket["count"] for bucket in answer["items"]]


async def test_raw_readings_expire_before_their_rollup(
    api, ingest, owner, project_id, auth_stub, clock
):
    await expect(
        await api.patch(
            f"/api/v1/project-settings/{project_id}",
            json={"telemetry_raw_retention_days": 1, "telemetry_rollup_retention_days": 3},
            headers=owner.headers,
        ),
        200,
    )
    sensor = await create_sensor(api, owner, project_id)
    elsewhere = uuid.uuid4()
    other_project = auth_stub.member(elsewhere, "owner")
    kept_elsewhere = await create_sensor(api, other_project, elsewhere)
    now = clock()
    five_days = minute_floor(now - 5 * DAY) + timedelta(seconds=10)
    two_days = minute_floor(now - 2 * DAY) + timedelta(seconds=10)
    recent = now - timedelta(hours=1)
    await send(ingest, sensor, five_days, two_days, two_days + timedelta(seconds=20), recent)
    await send(ingest, kept_elsewhere, five_days)

    # Not rolled up yet: the readings wait.
    assert await retention(ingest) == {
        "readings_deleted": 0,
        "rollup_deleted": 0,
        "projects_deferred": 1,
    }
    await Rollup(ingest.app[DATABASE], clock=clock, grace=timedelta(0)).refresh()
    clock.advance(3600)
    assert await retention(ingest) == {
        "readings_deleted": 3,
        "rollup_deleted": 1,
        "projects_deferred": 0,
    }
    assert len(await timestamps(ingest, owner, sensor)) == 1
    assert len(await timestamps(ingest, other_project, kept_elsewhere)) == 1
    # The 2-day-old minute: no readings, still in the rollup; the 5-day-old one: gone.
    assert await minute_counts(ingest, owner, sensor, minute_floor(two_days)) == [2]
    assert await minute_counts(ingest, owner, sensor, minute_floor(five_days)) == []

    # A late reading for the 2-day-old minute: stored, the minute's rollup left as it was, the
    # reading deleted by the next run.
    await send(ingest, sensor, two_days + timedelta(seconds=5))
    await Rollup(ingest.app[DATABASE], clock=clock, grace=timedelta(0)).refresh()
    assert await minute_counts(ingest, owner, sensor, minute_floor(two_days)) == [2]
    clock.advance(3600)
    assert (await retention(ingest))["readings_deleted"] == 1
    assert await minute_counts(ingest, owner, sensor, minute_floor(two_days)) == [2]
