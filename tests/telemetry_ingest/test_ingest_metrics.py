"""The rollup's and the spool's gauges as a scrape of the ingest service samples them."""

import time
import uuid
from datetime import timedelta

from prometheus_client import REGISTRY

from backend_common.metrics import SAMPLERS, sample
from telemetry_ingest_service.domain import ingest as ingest_domain
from telemetry_ingest_service.domain.spool import Spool
from tests.telemetry_ingest.readings_api import aligned, send_at
from tests.telemetry_ingest.test_spool import make_batch


def value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_rollup_lag_is_the_wait_of_the_oldest_queued_minute(pgsql, ingest_app, clock, sensor):
    lazy = await ingest_app(rollup_interval=3600)  # its refresher stays idle
    # Only this test's minutes in the queue (earlier tests on this database may have left some).
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("DELETE FROM telemetry_rollup_pending")
    start = aligned(clock.now, timedelta(minutes=1)) + timedelta(minutes=1)
    clock.advance(3600)
    await send_at(lazy, sensor, start, [(0, 1.0), (150, 2.0)])  # minutes 0-2 queued

    await sample(lazy.app[SAMPLERS], seconds_each=5)
    owed = (clock.now - (start + timedelta(minutes=3))).total_seconds()
    assert value("etp_rollup_pending_ranges") >= 1
    assert value("etp_rollup_lag_seconds") == owed

    clock.advance(60)
    await sample(lazy.app[SAMPLERS], seconds_each=5)
    assert value("etp_rollup_lag_seconds") == owed + 60

    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("DELETE FROM telemetry_rollup_pending")
    await sample(lazy.app[SAMPLERS], seconds_each=5)
    assert value("etp_rollup_pending_ranges") == 0
    assert value("etp_rollup_lag_seconds") == 0


async def test_spool_gauges_of_an_empty_spool(ingest):
    await sample(ingest.app[SAMPLERS], seconds_each=5)

    assert value("etp_spool_bytes") == 0
    assert value("etp_spool_oldest_segment_age_seconds") == 0
    assert value("etp_spool_capacity_bytes") == 1 << 30


async def test_spool_gauges_show_what_waits_for_postgresql(monkeypatch, ingest, clock, sensor):
    async def hung(seconds: float, work) -> None:
        work.close()
        raise TimeoutError

    # Every store (and replay) "times out": batches are spooled and stay there.
    monkeypatch.setattr(ingest_domain, "within", hung)
    spooled = REGISTRY.get_sample_value(
        "etp_ingest_batches_total", {"outcome": "spooled", "reason": ""}
    )

    answer = await send_at(ingest, sensor, clock.now - timedelta(minutes=5), [(0, 1.0), (1, 2.0)])
    await sample(ingest.app[SAMPLERS], seconds_each=5)

    assert answer["spooled"] is True
    assert value("etp_spool_bytes") > 0
    assert 0 <= value("etp_spool_oldest_segment_age_seconds") < 60
    assert (
        REGISTRY.get_sample_value("etp_ingest_batches_total", {"outcome": "spooled", "reason": ""})
        == spooled + 1
    )


async def test_spool_age_is_that_of_the_oldest_segment_still_spooled(tmp_path):
    spool = Spool(tmp_path / "worker-0", max_bytes=1 << 20)
    spool.open()
    try:
        assert spool.oldest_age() == 0
        await spool.append(make_batch(uuid.uuid4(), 1.0))
        first_at = time.time()
        await spool.seal()
        await spool.append(make_batch(uuid.uuid4(), 2.0))

        assert 3600 <= spool.oldest_age(now=first_at + 3600) < 3605
        first, second = spool.segments()
        await spool.remove(first)
        assert spool.oldest_age(now=first_at + 3600) < 3600
        await spool.remove(second)
        assert spool.oldest_age() == 0
    finally:
        spool.close()
