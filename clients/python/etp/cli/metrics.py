"""`etp log-metrics`: points from the arguments, or a CSV or JSON lines file (or stdin), sent in
batches of at most 10,000 as they are read (a slow pipe is flushed every `--flush-seconds`).

Both file formats come long (one point a row: `name`, `value`, optional `step`, `timestamp`) or
wide (one row a step: `step`, optional `timestamp`, then one column or key per metric; an empty
cell is no point)."""

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from etp.cli.common import JsonOption, client, counter, emit, note
from etp.errors import EtpError, UsageError
from etp.metrics import MAX_POINTS, MetricBatcher, Point, metric_point

RESERVED = ("step", "timestamp")


class InputFormat(StrEnum):
    auto = "auto"
    csv = "csv"
    jsonl = "jsonl"


def _step(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = float(value) if not isinstance(value, int) else value
        if isinstance(value, bool) or number != int(number):
            raise ValueError
        return int(number)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: a step is an integer, not {value!r}") from None


def _points_of_row(row: dict[str, Any], where: str) -> Iterator[Point]:
    step = _step(row.get("step"), where)
    timestamp = row.get("timestamp") or None
    try:
        if "name" in row and "value" in row:
            yield metric_point(str(row["name"]), row["value"], step=step, timestamp=timestamp)
            return
        for name, value in row.items():
            if name in RESERVED or value is None or value == "":
                continue
            yield metric_point(str(name), value, step=step, timestamp=timestamp)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc.detail}") from None


def read_csv(lines: Iterable[str]) -> Iterator[Point]:
    reader = csv.DictReader(lines)
    if not reader.fieldnames:
        return
    for row in reader:
        yield from _points_of_row(row, f"line {reader.line_num}")


def read_jsonl(lines: Iterable[str]) -> Iterator[Point]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"line {number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise UsageError(f"line {number}: a JSON object per line")
        yield from _points_of_row(row, f"line {number}")


def read_points(stream: IO[str], fmt: InputFormat) -> Iterator[Point]:
    lines = iter(stream)
    if fmt is InputFormat.auto:
        first = ""
        for first in lines:
            if first.strip():
                break
        fmt = InputFormat.jsonl if first.lstrip().startswith("{") else InputFormat.csv
        lines = _chain(first, lines)
    yield from (read_jsonl(lines) if fmt is InputFormat.jsonl else read_csv(lines))


def _input(file: str | None) -> AbstractContextManager[IO[str]]:
    if file in (None, "-"):
        return nullcontext(sys.stdin)
    return Path(str(file)).open(newline="")


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def log_metrics(
    run_id: str,
    pairs: Annotated[
        list[str] | None, typer.Argument(help="name=value ... (else points come from --file)")
    ] = None,
    step: Annotated[int | None, typer.Option("--step", help="The step of the pairs.")] = None,
    timestamp: Annotated[
        str | None, typer.Option("--timestamp", help="RFC 3339; default: now for the pairs.")
    ] = None,
    file: Annotated[
        str | None,
        typer.Option("--file", "-f", help="A CSV or JSON lines file; '-' (or nothing) is stdin."),
    ] = None,
    fmt: Annotated[InputFormat, typer.Option("--format", help="Of --file.")] = InputFormat.auto,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=MAX_POINTS, help="Points per request.")
    ] = MAX_POINTS,
    flush_seconds: Annotated[
        float, typer.Option("--flush-seconds", help="Send what waited this long.")
    ] = 1.0,
    json_output: JsonOption = False,
) -> None:
    """Log metric points into a run."""
    if pairs and file:
        raise UsageError("give name=value pairs or --file, not both")
    api = client()
    batcher = MetricBatcher(
        api, run_id, max_points=batch_size, flush_seconds=flush_seconds, retry_for=120.0
    )
    count = 0
    failure: BaseException | None = None
    try:
        if pairs:
            when = timestamp or datetime.now(UTC).isoformat()
            for pair in pairs:
                name, sep, value = pair.partition("=")
                if not sep:
                    raise UsageError(f"points are name=value, not {pair!r}")
                batcher.add(metric_point(name, value, step=step, timestamp=when))
                count += 1
        else:
            if step is not None or timestamp is not None:
                raise UsageError("--step and --timestamp go with name=value pairs")
            if file in (None, "-") and sys.stdin.isatty():
                raise UsageError("no points: give name=value pairs, --file, or pipe them in")
            with _input(file) as source, counter("logging metrics", "points") as shown:
                for point in read_points(source, fmt):
                    batcher.add(point)
                    count += 1
                    if count % 1000 == 0:
                        shown(count)
    except BaseException as exc:  # what was read before it is still sent
        failure = exc
    try:
        batcher.close()
    except EtpError as exc:
        failure = failure or exc
    finally:
        api.close()
    stats = batcher.stats
    if failure is not None:
        if stats.accepted:
            note(f"{stats.accepted:,} points were logged before the error")
        raise failure
    result = {
        "run_id": run_id,
        "points": count,
        "batches": stats.batches,
        "accepted": stats.accepted,
        "late": stats.late,
        "duplicate_batches": stats.duplicates,
    }
    emit(
        result,
        f"{stats.accepted:,} points logged into run {run_id} "
        f"({stats.batches} batches, {stats.late:,} late)",
    )
