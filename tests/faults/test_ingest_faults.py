"""Durability of telemetry ingest under faults: `202` means durable.

The real ingest process runs against a PostgreSQL cluster of the test's own; PostgreSQL is
stopped with `-m immediate`, the ingest process is killed with SIGKILL, its spool sits on a full
disk or gets a torn tail. Sensors keep sending meanwhile and resend refused or failed batches with
the same batch_id. The set check: every acknowledged reading is stored exactly once.
"""

import asyncio
import os
import random
import struct
import time
from collections import Counter

import pytest

from tests.faults.harness import (
    CLIENT_TIMEOUT,
    Batch,
    Ledger,
    assert_stored_once,
    client_session,
    make_batch,
    plan_batches,
    run_device,
    send,
    wait_drained,
)

pytestmark = pytest.mark.faults


def assert_no_trouble(ledger: Ledger, ingest) -> None:
    assert not ledger.unexpected, ledger.unexpected[:5]
    log = ingest.log_text()
    for event in ("spool_drain_failed", "spooled_batch_not_storable"):
        assert event not in log, f"{event} in the ingest log:\n{ingest.log_tail()}"


async def test_postgres_down_ten_seconds_under_load(cluster, make_sensors, ingest_process):
    """10 devices send 100,000 readings in batches of 500-1000 over ~17 s; PostgreSQL is stopped
    (immediate) 3 s in and started again 10 s later."""
    rng = random.Random(1)
    sensors = await make_sensors(10)
    ingest = ingest_process()
    await ingest.start()
    ledger = Ledger()
    plans = [plan_batches(ledger, sensor, 10_000, rng, 500, 1000) for sensor in sensors]
    assert len(ledger.sent) == 100_000

    async def postgres_outage():
        await asyncio.sleep(3.0)
        await asyncio.to_thread(cluster.stop, "immediate")
        await asyncio.sleep(10.0)
        await asyncio.to_thread(cluster.start)

    until = time.monotonic() + 60
    async with client_session() as session:
        await asyncio.gather(
            postgres_outage(),
            *(
                run_device(session, ingest, batches, ledger, pace=1.2, until=until)
                for batches in plans
            ),
        )
    await wait_drained(cluster, ingest, ledger)

    await assert_stored_once(cluster, ledger)
    assert not ledger.given_up, f"batches never acknowledged: {ledger.given_up[:5]}"
    assert ledger.acked == ledger.sent
    assert ledger.spooled_batches > 10, f"the outage was not exercised: {dict(ledger.statuses)}"
    assert ingest.alive
    assert_no_trouble(ledger, ingest)


async def test_ingest_killed_under_load(cluster, make_sensors, ingest_process):
    """8 devices send 40,000 readings; the ingest process is SIGKILLed 4 times and started again
    on the same spool: twice while PostgreSQL is down (stopped immediate) and the spool holds
    acknowledged batches, once while the next start replays the spool (a spooled batch stored,
    its segment not yet removed), once at a random moment under load."""
    seed = int.from_bytes(os.urandom(4), "big")
    print(f"chaos seed {seed}")
    rng = random.Random(seed)
    sensors = await make_sensors(8)
    ingest = ingest_process()
    await ingest.start()
    ledger = Ledger()
    plans = [plan_batches(ledger, sensor, 5_000, rng, 150, 450) for sensor in sensors]
    kills: list[str] = []

    def spooled_bytes() -> int:
        return sum(segment.stat().st_size for segment in ingest.segments())

    def kill(reason: str) -> None:
        kills.append(f"{reason} (spool {spooled_bytes()} B)")
        ingest.kill()

    async def replayed_batches(conn) -> int:
        return await conn.fetchval("SELECT count(*) FROM telemetry_batches WHERE spooled")

    async def kill_mid_replay() -> None:
        """Starts the process and kills it as soon as it has stored a spooled batch while the
        spool still holds segments (or after 3 s, if the replay was too quick to catch)."""
        conn = await cluster.connect()
        try:
            before = await replayed_batches(conn)
            ingest.spawn()
            replayed = 0
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                replayed = await replayed_batches(conn) - before
                if replayed and ingest.segments():
                    break
                await asyncio.sleep(0.005)
        finally:
            await conn.close()
        kill(f"mid-replay after {replayed} batches")

    async def chaos():
        for outage in range(2):
            await asyncio.sleep(rng.uniform(1.5, 2.5))
            await asyncio.to_thread(cluster.stop, "immediate")
            await asyncio.sleep(rng.uniform(1.0, 2.0))
            assert spooled_bytes() > 0, "nothing spooled while PostgreSQL was down"
            kill(f"postgres down #{outage + 1}")
            await asyncio.to_thread(cluster.start)
            if outage == 0:
                await kill_mid_replay()
            await ingest.start()
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        kill("under load")
        await asyncio.sleep(rng.uniform(0.1, 0.5))
        await ingest.start()

    until = time.monotonic() + 60
    async with client_session() as session:
        await asyncio.gather(
            chaos(),
            *(
                run_device(session, ingest, batches, ledger, pace=0.5, until=until)
                for batches in plans
            ),
        )
    print(f"kills: {kills}; answers: {dict(ledger.statuses)}")
    await wait_drained(cluster, ingest, ledger)

    await assert_stored_once(cluster, ledger)
    assert len(kills) == 4
    assert not ledger.given_up, f"batches never acknowledged: {ledger.given_up[:5]}"
    assert ledger.acked == ledger.sent
    assert ingest.alive
    assert_no_trouble(ledger, ingest)


async def fill_spool_and_heal(cluster, make_sensors, ingest, *, batches: int, size: int):
    """PostgreSQL stopped, 3 devices send `batches` batches once each until the spool is full;
    then PostgreSQL comes back, the spool drains and the refused batches are sent again."""
    sensors = await make_sensors(3)
    await ingest.start()
    ledger = Ledger()
    async with client_session() as session:
        # While PostgreSQL is up: stored at once, and each sensor's token digest is cached.
        for sensor in sensors:
            assert await send(session, ingest.url, make_batch(ledger, sensor, 5), ledger) == 202
        await asyncio.to_thread(cluster.stop, "immediate")

        outcomes: dict[str, int | str] = {}
        refused: list[Batch] = []
        retry_after: set[str] = set()

        async def device(sensor):
            for _ in range(batches // len(sensors)):
                batch = make_batch(ledger, sensor, size)
                outcomes[batch.batch_id] = await send(session, ingest.url, batch, ledger)
                if outcomes[batch.batch_id] != 202:
                    refused.append(batch)

        await asyncio.gather(*(device(sensor) for sensor in sensors))
        # One more request to look at the headers of a refusal.
        probe = make_batch(ledger, sensors[0], size)
        async with session.post(
            f"{ingest.url}/api/v1/telemetry",
            data=probe.body,
            headers={"Authorization": f"Bearer {probe.sensor.token}"},
        ) as response:
            probe_status = response.status
            probe_answer = await response.json(content_type=None)
            retry_after.add(response.headers.get("Retry-After", ""))
        if probe_status == 202:
            ledger.acked.update(probe.rids)
        else:
            refused.append(probe)

        print(f"answers while PostgreSQL was down: {dict(ledger.statuses)}")
        assert not ledger.unexpected, ledger.unexpected[:5]
        assert set(outcomes.values()) <= {202, 503}, dict(ledger.statuses)
        assert ledger.spooled_batches >= 1, dict(ledger.statuses)
        assert ledger.statuses["503 spool_full"] >= 1, dict(ledger.statuses)
        assert probe_status == 503, probe_answer
        assert probe_answer["code"] == "spool_full"
        assert retry_after - {""}, "503 without Retry-After"
        assert ingest.alive
        assert await ingest.health() == 200

        await asyncio.to_thread(cluster.start)
        await wait_drained(cluster, ingest, ledger)
        await assert_stored_once(cluster, ledger)

        # The devices resend what was refused: now it is stored, still once.
        for batch in refused:
            assert await send(session, ingest.url, batch, ledger) == 202
    assert ledger.acked == ledger.sent
    await assert_stored_once(cluster, ledger)
    assert ingest.alive
    assert_no_trouble(ledger, ingest)


async def test_spool_on_a_full_disk(cluster, make_sensors, tiny_spool_dir, ingest_process):
    """The spool on a 256 KiB tmpfs: 202 spooled until the disk is full (ENOSPC), then 503 with
    Retry-After; nothing refused is stored, everything acknowledged is, once."""
    ingest = ingest_process(spool_dir=tiny_spool_dir)
    await fill_spool_and_heal(cluster, make_sensors, ingest, batches=60, size=100)


async def test_spool_size_bound(cluster, make_sensors, ingest_process, tmp_path):
    """SPOOL_MAX_BYTES reached on a roomy disk: 503 with Retry-After, as for a full disk."""
    ingest = ingest_process(spool_dir=tmp_path / "bounded-spool", spool_max_bytes=40_000)
    await fill_spool_and_heal(cluster, make_sensors, ingest, batches=30, size=50)


_HEADER = struct.Struct("<II")


def torn_tail(kind: str, segment: bytes) -> bytes:
    """What a crash can leave after the last whole record of a segment."""
    if kind == "half_record":  # the header and half the payload of a record
        length, _ = _HEADER.unpack_from(segment, 0)
        return segment[: _HEADER.size + length // 2]
    if kind == "random_bytes":
        return random.Random(7).randbytes(37)
    if kind == "zero_fill":  # the file grew by a record, but its data never reached the disk
        length, _ = _HEADER.unpack_from(segment, 0)
        return bytes(_HEADER.size + length)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["half_record", "random_bytes", "zero_fill"])
async def test_torn_tail_of_the_spool(cluster, make_sensors, ingest_process, kind):
    """Batches spooled while PostgreSQL is down, the process SIGKILLed, a torn record appended to
    the last segment: the next start drops the torn tail, stores the valid batches and keeps
    serving."""
    (sensor,) = await make_sensors(1)
    ingest = ingest_process()
    await ingest.start()
    ledger = Ledger()
    async with client_session() as session:
        assert await send(session, ingest.url, make_batch(ledger, sensor, 5), ledger) == 202
        await asyncio.to_thread(cluster.stop, "immediate")
        for _ in range(6):
            assert await send(session, ingest.url, make_batch(ledger, sensor, 20), ledger) == 202
        assert ledger.spooled_batches == 6
        ingest.kill()
        last = ingest.segments()[-1]
        with last.open("ab") as file:
            file.write(torn_tail(kind, ingest.segments()[0].read_bytes()))

        await asyncio.to_thread(cluster.start)
        await ingest.start()
        await wait_drained(cluster, ingest, ledger)
        await assert_stored_once(cluster, ledger)
        assert not ingest.segments(), [s.name for s in ingest.segments()]
        assert "spool_torn_tail_cut" in ingest.log_text(), "the torn tail was not cut off"

        # Still serving: a new batch is stored.
        assert await send(session, ingest.url, make_batch(ledger, sensor, 5), ledger) == 202
    assert ledger.acked == ledger.sent
    await assert_stored_once(cluster, ledger)
    assert ingest.alive
    assert_no_trouble(ledger, ingest)


async def test_postgres_hung(cluster, make_sensors, ingest_process):
    """PostgreSQL stops answering (all its processes SIGSTOPped) for 9 s, longer than the token
    cache TTL (2 s here). A store slower than db_timeout (1 s) is spooled and the last known token
    digests still serve, so every batch is answered well within the client's 5 s; after SIGCONT
    every acknowledged reading is stored once. Busy devices send all along (some stores are in
    flight when PostgreSQL stops); quiet devices send once before and resume 3 s into the hang,
    when their cached digests are older than the TTL."""
    sensors = await make_sensors(6)
    ingest = ingest_process(token_cache_ttl=2.0)
    await ingest.start()
    ledger = Ledger()
    rng = random.Random(3)
    plans = [plan_batches(ledger, sensor, 1_500, rng, 40, 60) for sensor in sensors]
    busy, quiet = plans[:3], plans[3:]
    tallies: dict[str, Counter[str]] = {"busy": Counter(), "quiet": Counter()}
    frozen = asyncio.Event()

    async def hang():
        await asyncio.sleep(1.5)
        cluster.freeze()
        frozen.set()
        try:
            await asyncio.sleep(9.0)
        finally:
            cluster.thaw()

    async def busy_device(batches):
        for batch in batches:
            await send(session, ingest.url, batch, ledger, until=until, tally=tallies["busy"])
            await asyncio.sleep(0.3)

    async def quiet_device(batches):
        await send(session, ingest.url, batches[0], ledger, until=until, tally=tallies["quiet"])
        await frozen.wait()
        await asyncio.sleep(3.0)
        for batch in batches[1:]:
            await send(session, ingest.url, batch, ledger, until=until, tally=tallies["quiet"])
            await asyncio.sleep(0.3)

    until = time.monotonic() + 45
    async with client_session() as session:
        await asyncio.gather(
            hang(),
            *(busy_device(batches) for batches in busy),
            *(quiet_device(batches) for batches in quiet),
        )
    print(f"answers: busy {dict(tallies['busy'])}, quiet {dict(tallies['quiet'])}")
    await wait_drained(cluster, ingest, ledger)

    await assert_stored_once(cluster, ledger)
    assert ledger.acked == ledger.sent
    assert ledger.spooled_batches > 0, dict(ledger.statuses)
    assert ingest.alive
    assert_no_trouble(ledger, ingest)
    assert ledger.statuses["TimeoutError"] == 0, (
        f"requests unanswered within {CLIENT_TIMEOUT.total} s while PostgreSQL hung: "
        f"busy devices {dict(tallies['busy'])}, quiet devices {dict(tallies['quiet'])}"
    )
