#!/usr/bin/env python3
"""List and search queries over a million runs, through the API of a running stack.

Start the stack first (`make run`), then:

    .venv/bin/python bench/lists.py [--runs 1000000] [--repeat 20]

It makes a throwaway project with one experiment, inserts `--runs` runs straight into the
database (names, notes, tags, git SHAs and statuses spread out, creation times over a year),
then times each list query below through GET /api/v1/runs (first page, then the page after it)
and prints p50/p99 per query.
"""

import argparse
import asyncio
import time

import aiohttp
import asyncpg
from common import setup

_FILL = """
    INSERT INTO runs (experiment_id, project_id, name, notes, tags, git_sha, status, created_by,
                      created_at)
    SELECT $1, $2,
           'run ' || i || CASE WHEN i % 1000 = 0 THEN ' turbulence' ELSE '' END,
           CASE WHEN i % 97 = 0 THEN 'vortex shedding seen' ELSE '' END,
           ARRAY['t' || (i % 50), 'g' || (i % 7)],
           substr(md5(i::text), 1, 12),
           (ARRAY['draft', 'running', 'succeeded', 'failed', 'archived'])[1 + i % 5],
           $3,
           now() - (i % 31536000) * interval '1 second'
    FROM generate_series(1, $4) AS i
"""


def iso_days_ago(days: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - days * 86400))


def queries() -> dict[str, list[tuple[str, str]]]:
    return {
        "newest first": [],
        "by name": [("sort", "name")],
        "status=running": [("status", "running")],
        "tags any (t7, t8)": [("tags", "t7"), ("tags", "t8")],
        "tags all (t7, g0)": [("tags", "t7"), ("tags", "g0"), ("tags_match", "all")],
        "created in one day": [
            ("created_after", iso_days_ago(2)),
            ("created_before", iso_days_ago(1)),
        ],
        "git_sha prefix": [("git_sha", "abc")],
        "q=turbulence": [("q", "turbulence")],
        "q=vortex, by name": [("q", "vortex"), ("sort", "name")],
    }


async def main(args: argparse.Namespace) -> None:
    async with aiohttp.ClientSession() as session:
        headers, project_id, experiment_id = await setup(
            session, args.auth_url, args.experiment_url
        )
        conn = await asyncpg.connect(args.database_url)
        try:
            started = time.perf_counter()
            user = await conn.fetchval(
                "SELECT owner_id FROM experiments WHERE id = $1::uuid", experiment_id
            )
            await conn.execute(_FILL, experiment_id, project_id, user, args.runs)
            await conn.execute("ANALYZE runs")
            print(f"inserted {args.runs} runs in {time.perf_counter() - started:.1f} s")
        finally:
            await conn.close()

        url = f"{args.experiment_url}/api/v1/runs"
        print(f"\n{'query':<24} {'p50 ms':>8} {'p99 ms':>8} {'next page p50':>14}  rows")
        for name, extra in queries().items():
            params = [("project_id", project_id), ("limit", "50"), *extra]
            first, following, rows = [], [], 0
            for _ in range(args.repeat):
                started = time.perf_counter()
                async with session.get(url, params=params, headers=headers) as response:
                    body = await response.json()
                    assert response.status == 200, body
                first.append(time.perf_counter() - started)
                rows = len(body["items"])
                if body["next_cursor"]:
                    started = time.perf_counter()
                    async with session.get(
                        url, params=[*params, ("cursor", body["next_cursor"])], headers=headers
                    ) as response:
                        await response.read()
                    following.append(time.perf_counter() - started)
            first.sort()
            following.sort()
            p50 = first[len(first) // 2] * 1000
            p99 = first[min(len(first) - 1, int(0.99 * len(first)))] * 1000
            next_p50 = f"{following[len(following) // 2] * 1000:.1f}" if following else "-"
            print(f"{name:<24} {p50:>8.1f} {p99:>8.1f} {next_p50:>14}  {rows}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--auth-url", default="http://127.0.0.1:8001")
    parser.add_argument("--experiment-url", default="http://127.0.0.1:8002")
    parser.add_argument("--database-url", default="postgresql://etp@127.0.0.1:55432/experiment")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
