#!/usr/bin/env python3
"""The gateway's overhead: GET /api/v1/runs/{id} through the gateway vs straight at the service.

Start the stack first, with the gateway's per-session API limit out of the way (every request
here rides on one token, and the default 50/s would answer 429) and JSON logs, as in production
(`make run` renders console lines, which cost more):

    GATEWAY_LOG_FORMAT=json EXPERIMENT_LOG_FORMAT=json \
      GATEWAY_API_RATE_PER_SESSION=1000000 GATEWAY_API_BURST_PER_SESSION=1000000 make run

then:

    .venv/bin/python bench/gateway.py [--duration 5] [--rounds 6] [--concurrency 1 32]

It registers a throwaway user, creates a project, an experiment and some runs, then measures the
same GET with the same Bearer token (no cookies) at the experiment service and at the gateway,
closed loop at each `--concurrency`, alternating the two for `--rounds` rounds of `--duration`
seconds each (so drift on the box hits both alike), and prints requests/s and p50/p99 for each,
the p50 the gateway adds and its share of the direct throughput. The targets are judged where
each means something: the added p50 (< 2 ms) at the lowest concurrency, where it is the
gateway's own latency (at a saturating one it is mostly queueing); the throughput share
(>= 70 % of direct) at the highest, where both sides run flat out (at concurrency 1 it is only
the latency again, seen the other way round).
"""

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from common import expect, percentile, setup
from crud import Result, closed_loop

TARGET_ADDED_P50_MS = 2.0
TARGET_THROUGHPUT_SHARE = 0.70
WARMUP_SECONDS = 1.0


def merged(name: str, results: list[Result]) -> Result:
    return Result(
        name,
        [latency for result in results for latency in result.latencies],
        sum(result.errors for result in results),
        sum(result.elapsed for result in results),
    )


def getter(
    session: aiohttp.ClientSession, base_url: str, run_ids: list[str], headers: dict
) -> Callable[[], Awaitable[int]]:
    counter = iter(range(10**12))
    statuses: dict[int, int] = {}

    async def get_run() -> int:
        run_id = run_ids[next(counter) % len(run_ids)]
        async with session.get(f"{base_url}/api/v1/runs/{run_id}", headers=headers) as response:
            await response.read()
        if response.status == 429 and not statuses.get(429):
            print(
                f"{base_url}: 429 Too Many Requests - start the stack with "
                "GATEWAY_API_RATE_PER_SESSION and GATEWAY_API_BURST_PER_SESSION raised"
            )
        statuses[response.status] = statuses.get(response.status, 0) + 1
        return response.status

    return get_run


async def measure(
    args: argparse.Namespace, concurrency: int, run_ids: list[str], headers: dict
) -> tuple[Result, Result]:
    """Direct and gateway results at `concurrency`, the rounds of each merged."""
    targets = {"direct": args.experiment_url, "gateway": args.gateway_url}
    # One connection pool per target, as large as the concurrency: no request waits for a
    # connection on the client side.
    sessions = {
        name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        for name in targets
    }
    try:
        calls = {
            name: getter(sessions[name], url, run_ids, headers) for name, url in targets.items()
        }
        for name in targets:
            await closed_loop(name, calls[name], concurrency=concurrency, duration=WARMUP_SECONDS)
        rounds: dict[str, list[Result]] = {name: [] for name in targets}
        for n in range(args.rounds):
            for name in list(targets) if n % 2 == 0 else reversed(targets):
                rounds[name].append(
                    await closed_loop(
                        name, calls[name], concurrency=concurrency, duration=args.duration
                    )
                )
    finally:
        for client in sessions.values():
            await client.close()
    return (
        merged(f"direct   {args.experiment_url}", rounds["direct"]),
        merged(f"gateway  {args.gateway_url}", rounds["gateway"]),
    )


@dataclass
class Level:
    concurrency: int
    direct: Result
    gateway: Result

    @property
    def added_p50_ms(self) -> float:
        return percentile([x * 1000 for x in self.gateway.latencies], 0.5) - percentile(
            [x * 1000 for x in self.direct.latencies], 0.5
        )

    @property
    def share(self) -> float:
        return (len(self.gateway.latencies) / self.gateway.elapsed) / (
            len(self.direct.latencies) / self.direct.elapsed
        )

    def report(self) -> None:
        print(f"\nconcurrency {self.concurrency}")
        print(self.direct.line())
        print(self.gateway.line())
        print(
            f"added p50 {self.added_p50_ms:.2f} ms; "
            f"gateway throughput {100 * self.share:.0f} % of direct"
        )


def verdict(levels: list[Level]) -> None:
    lowest = min(levels, key=lambda level: level.concurrency)
    highest = max(levels, key=lambda level: level.concurrency)
    p50_ok = lowest.added_p50_ms < TARGET_ADDED_P50_MS
    share_ok = highest.share >= TARGET_THROUGHPUT_SHARE
    print(
        f"\ntargets: added p50 at concurrency {lowest.concurrency} {lowest.added_p50_ms:.2f} ms "
        f"(< {TARGET_ADDED_P50_MS:.0f} ms: {'met' if p50_ok else 'MISSED'}); throughput at "
        f"concurrency {highest.concurrency} {100 * highest.share:.0f} % of direct "
        f"(>= {100 * TARGET_THROUGHPUT_SHARE:.0f} %: {'met' if share_ok else 'MISSED'})"
    )


async def main(args: argparse.Namespace) -> None:
    async with aiohttp.ClientSession() as session:
        headers, _, experiment_id = await setup(session, args.auth_url, args.experiment_url)
        runs_url = f"{args.experiment_url}/api/v1/experiments/{experiment_id}/runs"
        run_ids = [
            (
                await expect(
                    await session.post(runs_url, json={"name": f"seed {i}"}, headers=headers), 201
                )
            )["id"]
            for i in range(20)
        ]
    print(
        f"GET /api/v1/runs/{{id}} with a Bearer token, {args.rounds} rounds of "
        f"{args.duration:.0f} s per target, {os.cpu_count()} cores"
    )
    levels = []
    for concurrency in args.concurrency:
        level = Level(concurrency, *await measure(args, concurrency, run_ids, headers))
        level.report()
        levels.append(level)
    verdict(levels)
    if any(level.direct.errors or level.gateway.errors for level in levels):
        raise SystemExit("errors during the measurement: the figures are not comparable")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateway-url", default="http://127.0.0.1:8000")
    parser.add_argument("--auth-url", default="http://127.0.0.1:8001")
    parser.add_argument("--experiment-url", default="http://127.0.0.1:8002")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round and target")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 32], help="one or more levels"
    )
    parser.add_argument("--rounds", type=int, default=6)
    asyncio.run(main(parser.parse_args()))
