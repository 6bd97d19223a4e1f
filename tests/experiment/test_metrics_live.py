"""Live run metrics: GET /api/v1/runs/{id}/metrics:stream is a server-sent event stream with one
`metrics` event per stored batch of the run (its id the batch id, to reconnect with
Last-Event-ID), for any member of the run's project, ended when that access ends."""

import json

import aiohttp
import pytest

from experiment_service.app import create_app
from tests.experiment.factories import create_run_in_status
from tests.experiment.metric_kit import log_metrics, metrics_path, point
from tests.problems import assert_problem
from tests.telemetry_ingest.sse import Block, EventStream

RECHECK = 0.05  # seconds between re-checks of a stream's access


@pytest.fixture
async def client(pgsql, aiohttp_client, make_settings, clock):
    settings = make_settings("experiment", stream_recheck_seconds=RECHECK)
    return await aiohttp_client(create_app(settings, clock=clock))


@pytest.fixture
async def run(client, editor, experiment):
    return await create_run_in_status(client, editor, experiment["id"], "running")


def stream_path(run_id) -> str:
    return f"{metrics_path(run_id)}:stream"


@pytest.fixture
def streams():
    opened: list[aiohttp.ClientResponse] = []

    async def open_stream(client, user, run_id, **headers) -> EventStream:
        response = await client.get(stream_path(run_id), headers={**user.headers, **headers})
        opened.append(response)
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        stream = EventStream(response)
        assert await stream.block() == Block(fields={"retry": "2000"})
        return stream

    yield open_stream
    for response in opened:
        response.close()


async def next_event(stream: EventStream) -> tuple[int, str, dict]:
    while True:
        block = await stream.block()
        assert block is not None, "the stream ended"
        if block.fields:
            return (
                int(block.fields.get("id", 0)),
                block.fields["event"],
                json.loads(block.fields["data"]),
            )


async def test_a_stored_batch_reaches_the_runs_streams(client, editor, viewer, run, streams):
    stream = await streams(client, viewer, run["id"])

    await log_metrics(
        client, editor, run["id"], [point("loss", 0.5, step=1), point("loss", "NaN", step=2)]
    )

    event_id, name, data = await next_event(stream)
    assert name == "metrics"
    assert data["batch_id"] == event_id
    assert [(p["name"], p["step"], p["value"], p["late"]) for p in data["points"]] == [
        ("loss", 1, 0.5, False),
        ("loss", 2, "NaN", False),
    ]
    assert data["points"][0]["timestamp"].endswith("Z")


async def test_another_runs_batches_do_not_reach_the_stream(
    client, editor, viewer, run, experiment, streams
):
    other = await create_run_in_status(client, editor, experiment["id"], "running")
    stream = await streams(client, viewer, run["id"])

    await log_metrics(client, editor, other["id"], [point("loss", 1.0)])
    await log_metrics(client, editor, run["id"], [point("loss", 2.0)])

    _, _, data = await next_event(stream)
    assert [p["value"] for p in data["points"]] == [2.0]


async def test_a_reconnecting_client_gets_the_batches_after_its_last_event(
    client, editor, viewer, run, streams
):
    first = await streams(client, viewer, run["id"])
    await log_metrics(client, editor, run["id"], [point("loss", 1.0)])
    seen, _, _ = await next_event(first)
    await log_metrics(client, editor, run["id"], [point("loss", 2.0)])
    await log_metrics(client, editor, run["id"], [point("loss", 3.0)])

    again = await streams(client, viewer, run["id"], **{"Last-Event-ID": str(seen)})

    replayed = [await next_event(again) for _ in range(2)]
    assert [data["points"][0]["value"] for _, _, data in replayed] == [2.0, 3.0]
    assert replayed[0][0] > seen


async def test_a_member_removed_from_the_project_is_cut_off(
    client, auth_stub, editor, viewer, project_id, run, streams
):
    stream = await streams(client, viewer, run["id"])
    await log_metrics(client, editor, run["id"], [point("loss", 1.0)])
    await next_event(stream)

    auth_stub.grant(viewer, project_id, None)

    _, name, data = await next_event(stream)
    assert (name, data) == ("end", {"reason": "access_revoked"})
    assert await stream.block() is None


async def test_a_stream_of_another_projects_run_is_404(client, auth_stub, run):
    stranger = auth_stub.user()

    response = await client.get(stream_path(run["id"]), headers=stranger.headers)

    await assert_problem(response, 404, "run_not_found")


@pytest.mark.parametrize(
    ("headers", "params", "status", "code"),
    [
        ({"Last-Event-ID": "x1"}, {}, 400, "invalid_last_event_id"),
        ({}, {"layer": "raw"}, 422, "validation_failed"),
    ],
)
async def test_a_bad_stream_request_is_refused(client, viewer, run, headers, params, status, code):
    response = await client.get(
        stream_path(run["id"]), params=params, headers={**viewer.headers, **headers}
    )

    await assert_problem(response, status, code)


async def test_a_user_holds_at_most_streams_per_user(
    pgsql, aiohttp_client, make_settings, clock, editor, viewer, experiment, streams
):
    client = await aiohttp_client(
        create_app(make_settings("experiment", streams_per_user=1), clock=clock)
    )
    run = await create_run_in_status(client, editor, experiment["id"], "running")
    await streams(client, viewer, run["id"])

    response = await client.get(stream_path(run["id"]), headers=viewer.headers)

    await assert_problem(response, 429, "too_many_streams")
