"""The on-disk spool: framing, order, bounds, ownership, and draining what earlier or other
worker processes left behind. (Outages of a real PostgreSQL are in tests/faults/.)"""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from telemetry_ingest_service.app import create_app as create_ingest_app
from telemetry_ingest_service.domain.batch import Batch
from telemetry_ingest_service.domain.spool import SET_ASIDE, Spool, SpoolFull
from tests.plugins.waiting import eventually
from tests.telemetry_ingest.ingest_api import create_sensor, linear, stored_records


def make_batch(
    sensor_id: uuid.UUID,
    *values: float,
    batch_id: str | None = None,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
) -> Batch:
    return Batch(
        sensor_id=sensor_id,
        run_id=None,
        capture_session_id=None,
        client_batch_id=batch_id,
        received_at=start + timedelta(hours=1),
        timestamps=[start + timedelta(seconds=i) for i in range(len(values))],
        raw_values=list(values),
        metas=[{"n": i} if i % 2 else None for i in range(len(values))],
    )


@pytest.fixture
def spool(tmp_path):
    spool = Spool(tmp_path / "worker-0", max_bytes=1 << 20)
    spool.open()
    yield spool
    spool.close()


async def spooled(spool: Spool) -> list[Batch]:
    return [batch for segment in spool.segments() for batch in await spool.read(segment)]


async def test_batches_come_back_whole_and_in_order(spool):
    batches = [make_batch(uuid.uuid4(), n, n + 0.5, batch_id=f"b{n}") for n in range(5)]
    for batch in batches:
        await spool.append(batch)

    assert await spooled(spool) == batches
    assert spool.size == sum(segment.stat().st_size for segment in spool.segments())


async def test_appends_after_a_seal_go_to_a_new_segment(spool):
    await spool.append(make_batch(uuid.uuid4(), 1))
    await spool.seal()
    await spool.append(make_batch(uuid.uuid4(), 2))

    first, second = spool.segments()
    assert [b.raw_values for b in await spool.read(first)] == [[1.0]]
    assert [b.raw_values for b in await spool.read(second)] == [[2.0]]
    await spool.remove(first)
    assert spool.segments() == [second]
    assert spool.size == second.stat().st_size


async def test_a_batch_past_the_size_bound_is_refused_and_nothing_is_written(tmp_path):
    spool = Spool(tmp_path / "worker-0", max_bytes=400)
    spool.open()
    await spool.append(make_batch(uuid.uuid4(), 1))
    size = spool.size

    with pytest.raises(SpoolFull):
        await spool.append(make_batch(uuid.uuid4(), *range(50)))

    assert spool.size == size
    assert sum(segment.stat().st_size for segment in spool.segments()) == size
    spool.close()


@pytest.mark.parametrize(
    "tail",
    [
        b"\x10\x00",  # half a header
        b"\xff" * 7,
        b"\x40\x00\x00\x00\x00\x00\x00\x00{",  # a header and part of its payload
        b"\x00" * 64,  # the file grew, but its data never reached the disk
    ],
)
async def test_a_torn_record_at_the_end_is_cut_off_when_opened(tmp_path, tail):
    directory = tmp_path / "worker-0"
    spool = Spool(directory, max_bytes=1 << 20)
    spool.open()
    kept = [make_batch(uuid.uuid4(), 1), make_batch(uuid.uuid4(), 2)]
    for batch in kept:
        await spool.append(batch)
    spool.close()
    (segment,) = spool.segments()
    whole = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(tail)

    reopened = Spool(directory, max_bytes=1 << 20)
    reopened.open()

    assert segment.stat().st_size == whole
    assert await spooled(reopened) == kept
    reopened.close()


async def test_one_process_owns_a_spool_folder(spool):
    other = Spool(spool.directory, max_bytes=1 << 20)
    with pytest.raises(RuntimeError, match="another process"):
        other.open()
    spool.close()
    other.open()
    other.close()


async def test_a_set_aside_batch_is_kept_outside_the_segments(spool):
    batch = make_batch(uuid.uuid4(), 7)

    await spool.set_aside(batch)

    assert spool.segments() == []
    assert (spool.directory / SET_ASIDE).stat().st_size > 0


async def test_ingest_stores_what_earlier_and_other_workers_spooled(
    pgsql, aiohttp_client, api, owner, project_id, ingest_settings, clock, tmp_path
):
    sensor = await create_sensor(api, owner, project_id, profile=linear(a=2.0))
    sensor_id = uuid.UUID(sensor["id"])
    # What this worker spooled before a restart, and what a worker that no longer runs left.
    for worker, values in ((0, (1.0, 2.0)), (3, (3.0,))):
        left = Spool(tmp_path / f"worker-{worker}", max_bytes=1 << 20)
        left.open()
        await left.append(
            make_batch(sensor_id, *values, batch_id=f"left-by-{worker}", start=clock.now)
        )
        left.close()
    # A live worker's folder is its own business.
    live = Spool(tmp_path / "worker-1", max_bytes=1 << 20)
    live.open()
    await live.append(make_batch(sensor_id, 9.0, batch_id="live"))

    await aiohttp_client(create_ingest_app(ingest_settings(spool_dir=tmp_path), clock=clock))

    def left_segments() -> list[Path]:
        return [*tmp_path.glob("worker-0/*.spool"), *tmp_path.glob("worker-3/*.spool")]

    async def three_stored_and_deleted():
        # A segment is deleted just after its batches commit: wait for both.
        rows = stored_records(pgsql, sensor["id"])
        return rows if len(rows) == 3 and not left_segments() else None

    rows = await eventually(three_stored_and_deleted)
    assert sorted((r["raw_value"], r["physical_value"]) for r in rows) == [
        (1.0, 2.0),
        (2.0, 4.0),
        (3.0, 6.0),
    ]
    assert len(live.segments()) == 1
    live.close()
