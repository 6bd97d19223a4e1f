#!/usr/bin/env python3
"""Raw → physical conversion cost per reading, by conversion profile, in process (no stack).

    .venv/bin/python bench/conversion.py [--batch 10000] [--rounds 5]

Converts batches of `--batch` readings (raw values spread over the table's range, one profile
covering the whole batch: the ingest path's `convert_batch`) with table profiles of 10, 1,000
and 100,000 points (the API takes at most 1,000; 100,000 shows the cost is flat in the size),
and with a linear and a degree-5 polynomial profile for comparison. Prints the best of
`--rounds` rounds in microseconds per reading.
"""

import argparse
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from backend_common.conversion import Converter, Linear, Polynomial, Table, TablePoint
from telemetry_ingest_service.domain.conversion import ProfileSpan, convert_batch

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def table(points: int) -> Table:
    """A monotone calibration table; built without validation past the API's 1,000 points."""
    rows = [TablePoint(x=float(i), y=i * 1.5 + (i % 7) * 0.01) for i in range(points)]
    return Table.model_construct(points=rows, extrapolate=False)


def per_reading_us(converter: Converter, raws: list[float], rounds: int) -> float:
    span = ProfileSpan(uuid.uuid4(), converter, T0, None)
    timestamps = [T0 + timedelta(milliseconds=i) for i in range(len(raws))]
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        convert_batch(timestamps, raws, [span])
        best = min(best, time.perf_counter() - started)
    return best / len(raws) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(16)
    profiles: list[tuple[str, Converter, float]] = [
        ("linear", Linear(a=2.0, b=1.0), 1000.0),
        ("polynomial (degree 5)", Polynomial(coefficients=[1, 2, 3, 4, 5, 6]), 1000.0),
    ]
    profiles += [(f"table, {n:,} points", table(n), float(n - 1)) for n in (10, 1_000, 100_000)]
    print(f"{'profile':<24} {'µs/reading':>10} {'ms/batch':>9}   (batch of {args.batch:,})")
    for name, converter, top in profiles:
        raws = [rng.uniform(-0.05 * top, 1.05 * top) for _ in range(args.batch)]
        us = per_reading_us(converter, raws, args.rounds)
        print(f"{name:<24} {us:>10.3f} {us * args.batch / 1000:>9.2f}")


if __name__ == "__main__":
    main()
