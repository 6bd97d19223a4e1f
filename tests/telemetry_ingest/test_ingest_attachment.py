"""Accepted telemetry batches attached to a run and capture session: explicit ids checked against
the sensor's bindings, the running session taken when none is named, readings for finished runs
and sessions stored late, archived ones refused."""

from datetime import timedelta

import pytest

from tests.experiment.factories import (
    create_experiment,
    create_run_in_status,
    set_run_status,
    start_capture,
)
from tests.telemetry_ingest.ingest_api import (
    accepted,
    attachments,
    batch,
    bound_run,
    create_sensor,
    readings_at,
    refused_batch,
    stop_capture,
    stored_batches,
    stored_counts,
    stored_records,
)

SECOND = timedelta(seconds=1)


@pytest.fixture
async def experiment(api, owner, project_id):
    return await create_experiment(api, owner, project_id)


@pytest.fixture
async def sensor(api, owner, project_id):
    return await create_sensor(api, owner, project_id)


# --- attachment to runs and capture sessions -----------------------------------------------------


async def test_explicit_run_and_session_attach_the_batch(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    run = await bound_run(api, owner, experiment, sensor)
    session = await start_capture(api, owner, run["id"])
    body = batch(
        sensor, readings_at(clock.now, 1, 2), run_id=run["id"], capture_session_id=session["id"]
    )

    answer = await accepted(ingest, sensor["token"], body)

    assert (answer["run_id"], answer["capture_session_id"], answer["late"]) == (
        run["id"],
        session["id"],
        0,
    )
    assert attachments(stored_records(pgsql, sensor["id"])) == {(run["id"], session["id"], False)}
    (stored,) = stored_batches(pgsql, sensor["id"])
    assert (stored["run_id"], stored["capture_session_id"]) == (run["id"], session["id"])


async def test_explicit_session_alone_attaches_to_its_run(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    await bound_run(api, owner, experiment, sensor)  # another bound run, no session
    run = await bound_run(api, owner, experiment, sensor)
    session = await start_capture(api, owner, run["id"])

    answer = await accepted(
        ingest,
        sensor["token"],
        batch(sensor, readings_at(clock.now, 1), capture_session_id=session["id"]),
    )

    assert (answer["run_id"], answer["capture_session_id"]) == (run["id"], session["id"])
    assert attachments(stored_records(pgsql, sensor["id"])) == {(run["id"], session["id"], False)}


async def test_run_alone_takes_its_running_session(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    run = await bound_run(api, owner, experiment, sensor)
    stopped = await start_capture(api, owner, run["id"])
    await stop_capture(api, owner, run["id"], stopped["id"])
    running = await start_capture(api, owner, run["id"])

    answer = await accepted(
        ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1), run_id=run["id"])
    )

    assert (answer["run_id"], answer["capture_session_id"]) == (run["id"], running["id"])
    assert attachments(stored_records(pgsql, sensor["id"])) == {(run["id"], running["id"], False)}


@pytest.mark.parametrize("status", ["draft", "running"])
async def test_run_alone_without_running_session_attaches_to_the_run_only(
    api, ingest, owner, experiment, sensor, clock, pgsql, status
):
    run = await bound_run(api, owner, experiment, sensor, status)

    answer = await accepted(
        ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1), run_id=run["id"])
    )

    assert (answer["run_id"], answer["capture_session_id"], answer["late"]) == (
        run["id"],
        None,
        0,
    )
    assert attachments(stored_records(pgsql, sensor["id"])) == {(run["id"], None, False)}


async def test_without_ids_the_batch_goes_to_the_running_session_of_a_bound_run(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    await bound_run(api, owner, experiment, sensor)  # bound, but not capturing
    run = await bound_run(api, owner, experiment, sensor)
    session = await start_capture(api, owner, run["id"])
    unbound = await create_run_in_status(api, owner, experiment["id"], "running")
    await start_capture(api, owner, unbound["id"])  # capturing, but not this sensor's run

    answer = await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    assert (answer["run_id"], answer["capture_session_id"]) == (run["id"], session["id"])
    assert attachments(stored_records(pgsql, sensor["id"])) == {(run["id"], session["id"], False)}


@pytest.mark.parametrize("latest", [0, 1])
async def test_without_ids_the_most_recently_started_session_wins(
    api, ingest, owner, experiment, sensor, clock, pgsql, latest
):
    runs = [await bound_run(api, owner, experiment, sensor) for _ in range(2)]
    order = [1 - latest, latest]
    sessions = {index: await start_capture(api, owner, runs[index]["id"]) for index in order}

    answer = await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    expected = (runs[latest]["id"], sessions[latest]["id"])
    assert (answer["run_id"], answer["capture_session_id"]) == expected
    assert attachments(stored_records(pgsql, sensor["id"])) == {(*expected, False)}


async def test_without_ids_and_no_running_session_the_batch_is_unattached(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    run = await bound_run(api, owner, experiment, sensor)
    session = await start_capture(api, owner, run["id"])
    await stop_capture(api, owner, run["id"], session["id"])
    await bound_run(api, owner, experiment, sensor, "succeeded")

    answer = await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    assert (answer["run_id"], answer["capture_session_id"], answer["late"]) == (None, None, 0)
    assert attachments(stored_records(pgsql, sensor["id"])) == {(None, None, False)}
    (stored,) = stored_batches(pgsql, sensor["id"])
    assert (stored["run_id"], stored["capture_session_id"]) == (None, None)


async def test_unbound_sensor_without_ids_is_unattached(ingest, sensor, clock, pgsql):
    answer = await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    assert (answer["run_id"], answer["capture_session_id"]) == (None, None)
    assert attachments(stored_records(pgsql, sensor["id"])) == {(None, None, False)}


@pytest.mark.parametrize("which", ["unbound", "unknown"])
async def test_run_the_sensor_is_not_bound_to_is_refused(
    api, ingest, owner, experiment, sensor, clock, pgsql, which
):
    await bound_run(api, owner, experiment, sensor)
    if which == "unbound":
        run_id = (await create_run_in_status(api, owner, experiment["id"], "running"))["id"]
    else:
        run_id = "00000000-0000-4000-8000-000000000000"

    await refused_batch(
        ingest,
        pgsql,
        sensor,
        batch(sensor, readings_at(clock.now, 1), run_id=run_id),
        409,
        "sensor_not_bound",
    )


async def test_session_of_another_bound_run_is_refused(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    run = await bound_run(api, owner, experiment, sensor)
    other = await bound_run(api, owner, experiment, sensor)
    session = await start_capture(api, owner, other["id"])

    await refused_batch(
        ingest,
        pgsql,
        sensor,
        batch(
            sensor, readings_at(clock.now, 1), run_id=run["id"], capture_session_id=session["id"]
        ),
        409,
        "capture_session_mismatch",
    )


@pytest.mark.parametrize("with_run", [False, True])
async def test_session_of_an_unbound_run_is_refused(
    api, ingest, owner, experiment, sensor, clock, pgsql, with_run
):
    await bound_run(api, owner, experiment, sensor)
    run = await create_run_in_status(api, owner, experiment["id"], "running")
    session = await start_capture(api, owner, run["id"])
    ids = {"capture_session_id": session["id"], **({"run_id": run["id"]} if with_run else {})}

    await refused_batch(
        ingest,
        pgsql,
        sensor,
        batch(sensor, readings_at(clock.now, 1), **ids),
        409,
        "capture_session_mismatch",
    )


@pytest.mark.parametrize("status", ["succeeded", "failed"])
async def test_readings_for_a_finished_run_are_stored_late(
    api, ingest, owner, experiment, sensor, clock, pgsql, status
):
    run = await bound_run(api, owner, experiment, sensor)
    session = await start_capture(api, owner, run["id"])
    await stop_capture(api, owner, run["id"], session["id"])
    await set_run_status(api, owner, run["id"], status)

    by_run = await accepted(
        ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1, 2), run_id=run["id"])
    )
    by_session = await accepted(
        ingest,
        sensor["token"],
        batch(sensor, readings_at(clock.now, 3), capture_session_id=session["id"]),
    )

    assert (by_run["accepted"], by_run["late"], by_run["capture_session_id"]) == (2, 2, None)
    assert (by_session["late"], by_session["capture_session_id"]) == (1, session["id"])
    rows = stored_records(pgsql, sensor["id"])
    assert [(r["run_id"], r["capture_session_id"], r["late"]) for r in rows] == [
        (run["id"], None, True),
        (run["id"], None, True),
        (run["id"], session["id"], True),
    ]


@pytest.mark.parametrize("stop_status", ["succeeded", "failed"])
async def test_readings_for_a_stopped_session_of_a_running_run_are_stored_late(
    api, ingest, owner, experiment, sensor, clock, pgsql, stop_status
):
    run = await bound_run(api, owner, experiment, sensor)
    session = await start_capture(api, owner, run["id"])
    reason = {"reason": "probe fell off"} if stop_status == "failed" else {}
    await stop_capture(api, owner, run["id"], session["id"], status=stop_status, **reason)

    answer = await accepted(
        ingest,
        sensor["token"],
        batch(sensor, readings_at(clock.now, 1, 2, 3), capture_session_id=session["id"]),
    )

    assert (answer["accepted"], answer["late"]) == (3, 3)
    assert attachments(stored_records(pgsql, sensor["id"])) == {(run["id"], session["id"], True)}


async def test_readings_for_a_running_session_are_not_late(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    run = await bound_run(api, owner, experiment, sensor)
    await start_capture(api, owner, run["id"])

    answer = await accepted(ingest, sensor["token"], batch(sensor, readings_at(clock.now, 1)))

    assert answer["late"] == 0
    assert {r["late"] for r in stored_records(pgsql, sensor["id"])} == {False}


async def test_archived_run_refuses_readings_and_stores_nothing(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    run = await bound_run(api, owner, experiment, sensor)
    session = await start_capture(api, owner, run["id"])
    await stop_capture(api, owner, run["id"], session["id"])
    for status in ("succeeded", "archived"):
        await set_run_status(api, owner, run["id"], status)

    for ids in (
        {"run_id": run["id"]},
        {"capture_session_id": session["id"]},
        {"run_id": run["id"], "capture_session_id": session["id"]},
    ):
        await refused_batch(
            ingest,
            pgsql,
            sensor,
            batch(sensor, readings_at(clock.now, 1), **ids),
            409,
            "run_archived",
        )
    assert stored_counts(pgsql) == (0, 0)


async def test_archived_session_refuses_readings_and_stores_nothing(
    api, ingest, owner, experiment, sensor, clock, pgsql
):
    run = await bound_run(api, owner, experiment, sensor)
    session = await start_capture(api, owner, run["id"])
    await stop_capture(api, owner, run["id"], session["id"])
    await set_run_status(api, owner, run["id"], "succeeded")
    # The API archives sessions only with their run; the ingest path checks the session itself.
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "UPDATE capture_sessions SET status = 'archived' WHERE id = %s", (session["id"],)
        )

    await refused_batch(
        ingest,
        pgsql,
        sensor,
        batch(sensor, readings_at(clock.now, 1), capture_session_id=session["id"]),
        409,
        "capture_session_archived",
    )
