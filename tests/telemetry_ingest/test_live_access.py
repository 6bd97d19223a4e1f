"""Live streams outlive access no more: an open stream's access is checked again every
STREAM_RECHECK_SECONDS (set small here), and it ends at its token's expiry, each time with a
final `end` event saying why; a project turned physical_only narrows an open stream at once."""

import asyncio
import json

import pytest

from telemetry_ingest_service.appkeys import HUB
from tests.plugins.people import FakeClock
from tests.telemetry_ingest.ingest_api import RAW_LAYER_FIELDS, READING_FIELDS
from tests.telemetry_ingest.sse import EventStream, event_of, query
from tests.telemetry_ingest.test_live import send

RECHECK = 0.05  # seconds between re-checks of a stream's access
SETTLE = 10 * RECHECK  # a change is seen by then


@pytest.fixture
async def ingest(pgsql, ingest_app):
    return await ingest_app(stream_recheck_seconds=RECHECK)


async def end_of(stream: EventStream) -> str:
    """The reason of the stream's `end` event, which must come before any batch; the response
    must end right after it."""
    while True:
        block = await stream.block()
        assert block is not None, "the stream ended without an end event"
        if not block.fields:
            continue  # a keep-alive
        assert block.fields.get("event") == "end", f"a batch came instead: {event_of(block)}"
        assert set(block.fields) == {"event", "data"}
        assert await stream.block() is None, "the response goes on after its end event"
        return json.loads(block.fields["data"])["reason"]


async def test_a_viewer_removed_from_the_project_stops_getting_batches(
    ingest, auth_stub, viewer, project_id, sensor, base, streams
):
    stream = await streams(ingest, viewer, query([sensor]))
    await send(ingest, sensor, base, 1.0)
    assert (await stream.event()).raws == [1.0]

    auth_stub.grant(viewer, project_id, None)

    assert await end_of(stream) == "access_revoked"
    await send(ingest, sensor, base, 2.0, offset=1)
    fresh = await ingest.get(
        "/api/v1/telemetry/stream", params=query([sensor]), headers=viewer.headers
    )
    assert fresh.status == 404


async def test_a_stream_ends_when_its_token_expires(ingest, viewer, sensor, base, streams):
    ingest.server.app[HUB].clock = time_of_day = FakeClock()
    stream = await streams(ingest, viewer, query([sensor]))
    await send(ingest, sensor, base, 1.0)
    assert (await stream.event()).raws == [1.0]

    time_of_day.advance(60)
    await send(ingest, sensor, base, 2.0, offset=1)
    assert (await stream.event()).raws == [2.0]  # still valid a minute on
    time_of_day.advance(900)  # the stub's tokens live 900 s

    assert await end_of(stream) == "token_expired"


async def test_physical_only_narrows_an_open_stream_at_once(
    ingest, auth_stub, viewer, project_id, sensor, base, streams
):
    physical = await streams(ingest, viewer, query([sensor]))
    raw = await streams(ingest, viewer, query([sensor], layer="raw"))
    await send(ingest, sensor, base, 1.0)
    assert list((await physical.event()).readings[0]) == READING_FIELDS
    assert list((await raw.event()).readings[0]) == RAW_LAYER_FIELDS

    auth_stub.physical_only.add(project_id)
    await asyncio.sleep(SETTLE)
    await send(ingest, sensor, base, 2.0, offset=1)

    narrowed = await physical.event()
    assert narrowed.readings[0]["physical_value"] == 5.0
    assert "raw_value" not in narrowed.readings[0]
    assert await end_of(raw) == "raw_values_hidden"


async def test_streams_whose_access_holds_go_on(ingest, owner, viewer, sensor, base, streams):
    by_owner = await streams(ingest, owner, query([sensor], layer="raw"))
    by_viewer = await streams(ingest, viewer, query([sensor]))

    await asyncio.sleep(SETTLE)  # several re-checks
    await send(ingest, sensor, base, 1.0)

    assert (await by_owner.event()).raws == [1.0]
    assert (await by_viewer.event()).raws == [1.0]
