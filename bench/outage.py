#!/usr/bin/env python3
"""The big PostgreSQL outage: many sensors keep sending while the database is down, then the set
check (every acknowledged reading stored exactly once).

Needs nothing running: it starts a throwaway PostgreSQL cluster and the real ingest process
itself (the machinery of tests/faults), then

    .venv/bin/python bench/outage.py [--sensors 20] [--readings 1000000] [--outage 30]

has `--sensors` devices send `--readings` readings in batches of 500-1,000 (each resent with its
batch_id until acknowledged), stops PostgreSQL (`pg_ctl stop -m immediate`) a few seconds in for
`--outage` seconds, starts it again, waits until the spool is drained and prints what happened:
acknowledged, spooled, stored, lost (acknowledged but missing) and duplicated readings.
"""

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults.harness import (
    Cluster,
    IngestProcess,
    Ledger,
    client_session,
    insert_sensors,
    plan_batches,
    run_device,
    stored_rids,
    wait_drained,
)


async def main(args: argparse.Namespace) -> None:
    # Its /metrics on a free port: the default (9003) is a running `make run`'s.
    os.environ.setdefault("TELEMETRY_INGEST_METRICS_PORT", "0")
    cluster = Cluster()
    workdir = Path(tempfile.mkdtemp(prefix="etp-outage-"))
    try:
        await asyncio.to_thread(cluster.create)
        sensors = await insert_sensors(cluster, args.sensors)
        ingest = IngestProcess(cluster, workdir / "spool", workdir / "ingest.log")
        await ingest.start()
        ledger = Ledger()
        rng = random.Random(7)
        per_sensor = args.readings // args.sensors
        plans = [plan_batches(ledger, sensor, per_sensor, rng, 500, 1000) for sensor in sensors]
        print(
            f"{args.sensors} sensors, {len(ledger.sent):,} readings in "
            f"{sum(len(p) for p in plans):,} batches; PostgreSQL down for {args.outage:.0f} s "
            f"from {args.outage_at:.0f} s in"
        )

        async def outage() -> None:
            await asyncio.sleep(args.outage_at)
            await asyncio.to_thread(cluster.stop, "immediate")
            await asyncio.sleep(args.outage)
            await asyncio.to_thread(cluster.start)

        started = time.monotonic()
        until = started + args.outage_at + args.outage + 600
        async with client_session() as session:
            await asyncio.gather(
                outage(),
                *(
                    run_device(session, ingest, batches, ledger, pace=args.pace, until=until)
                    for batches in plans
                ),
            )
        sent_for = time.monotonic() - started
        await wait_drained(cluster, ingest, ledger, within=600)
        drained_after = time.monotonic() - started
        stored = Counter(await stored_rids(cluster))
        lost = ledger.acked - stored.keys()
        duplicated = [rid for rid, count in stored.items() if count > 1]
        print(f"sending took {sent_for:.1f} s; spool drained {drained_after:.1f} s after start")
        print(f"answers: {dict(ledger.statuses)}")
        print(
            f"acknowledged {len(ledger.acked):,} readings ({ledger.spooled_batches:,} batches "
            f"spooled); stored {sum(stored.values()):,}; lost {len(lost)}; "
            f"duplicated {len(duplicated)}; never acknowledged {len(ledger.given_up)} batches"
        )
        await ingest.stop()
        if lost or duplicated or ledger.given_up:
            raise SystemExit("FAILED: see above")
    finally:
        await asyncio.to_thread(cluster.destroy)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--outage-at", type=float, default=5.0)
    parser.add_argument("--pace", type=float, default=0.5, help="seconds between batches")
    asyncio.run(main(parser.parse_args()))
