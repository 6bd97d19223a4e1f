"""`etp export telemetry|runs`: the service's streamed export to a file (or stdout), as CSV, JSON
or Parquet, with progress on stderr. The file is written beside its destination and renamed into
place only when the whole export arrived."""

import os
import sys
import uuid
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from etp.cli.common import STATE, JsonOption, client, counter, emit, note, transfer
from etp.client import Params
from etp.errors import ApiError, UsageError
from etp.export import iter_json_array, write_parquet
from etp.resolve import find_experiment, find_project, is_uuid

export = typer.Typer(name="export", help="Telemetry or runs to a file.", no_args_is_help=True)


class Format(StrEnum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


class Layer(StrEnum):
    physical = "physical"
    raw = "raw"


def readings_of(
    sensors: list[str] | None,
    run: str | None,
    capture: str | None,
    layer: Layer,
    signals: list[str] | None = None,
) -> dict[str, Any]:
    """The query that selects readings of sensors, a run or a capture session (only on the
    given channels, when there are some)."""
    if not (sensors or run or capture):
        raise UsageError("give --sensor, --run or --capture")
    return {
        "sensor_id": sensors or None,
        "run_id": run,
        "capture_session_id": capture,
        "signal": signals or None,
        "layer": layer.value,
    }


SignalOption = Annotated[
    list[str] | None,
    typer.Option("--signal", help="Only this channel of multi-channel sensors; repeat for more."),
]


FormatOption = Annotated[Format, typer.Option("--format", help="csv, json or parquet.")]
OutputOption = Annotated[
    str | None,
    typer.Option("--output", "-o", help="The file ('-': stdout); default: <kind>.<format>."),
]
# An export may stream for minutes (EXPORT_MAX_SECONDS); a long quiet gap is a dead connection.
STREAM_TIMEOUT = httpx.Timeout(30.0, read=120.0)


def _run_export(kind: str, path: str, params: Params, fmt: Format, output: str | None) -> None:
    to_stdout = output == "-"
    if to_stdout and STATE.json:
        raise UsageError("--json prints a summary on stdout: give --output a file")
    if to_stdout and fmt is Format.parquet:
        raise UsageError("Parquet goes to a file: give --output")
    target = Path(output or f"{kind}.{fmt.value}")
    wire = "csv" if fmt is Format.csv else "json"
    api = client()
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    size = rows = 0
    try:
        with api.stream(
            "GET", path, params={**params, "format": wire}, timeout=STREAM_TIMEOUT
        ) as response:
            truncated = response.headers.get("Export-Truncated")
            row_limit = response.headers.get("Export-Row-Limit")
            chunks = response.iter_bytes(256 * 1024)
            if fmt is Format.parquet:
                with counter(f"exporting {kind}", "rows") as shown:
                    rows = write_parquet(iter_json_array(chunks), partial, kind, on_rows=shown)
                size = partial.stat().st_size
            else:
                opened = nullcontext(sys.stdout.buffer) if to_stdout else partial.open("wb")
                with opened as sink, transfer(f"exporting {kind}", None) as shown:
                    for chunk in chunks:
                        sink.write(chunk)
                        size += len(chunk)
                        shown(size)
                    sink.flush()
        if not to_stdout:
            os.replace(partial, target)
    except httpx.TransportError as exc:
        raise ApiError(None, "export_cut", f"the export broke off: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
        api.close()
    if truncated:
        note(f"warning: the export stopped at the service's cap of {row_limit} rows; narrow it")
    result: dict[str, Any] = {
        "kind": kind,
        "format": fmt.value,
        "path": None if to_stdout else str(target.resolve()),
        "bytes": size,
        "rows": rows if fmt is Format.parquet else None,
        "truncated": bool(truncated),
    }
    if to_stdout:
        return
    counted = f", {rows:,} row{'' if rows == 1 else 's'}" if fmt is Format.parquet else ""
    emit(result, f"{target}: {size:,} bytes{counted}")


@export.command("telemetry")
def export_telemetry(
    sensor: Annotated[list[str] | None, typer.Option("--sensor", help="Repeat, up to 20.")] = None,
    run: Annotated[str | None, typer.Option("--run")] = None,
    capture: Annotated[str | None, typer.Option("--capture", help="A capture session.")] = None,
    since: Annotated[str | None, typer.Option("--from", help="RFC 3339, inclusive.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="RFC 3339, exclusive.")] = None,
    layer: Annotated[Layer, typer.Option("--layer")] = Layer.physical,
    signal: SignalOption = None,
    fmt: FormatOption = Format.csv,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Readings of sensors, a run or a capture session."""
    params = readings_of(sensor, run, capture, layer, signal) | {"from": since, "to": until}
    _run_export("telemetry", "/api/v1/telemetry/export", params, fmt, output)


@export.command("runs")
def export_runs(
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
    status: Annotated[list[str] | None, typer.Option("--status")] = None,
    fmt: FormatOption = Format.csv,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Runs of a project or an experiment, with their params."""
    if project is None and experiment is None:
        raise UsageError("give --project, --experiment or both")
    api = client()
    params: dict[str, Any] = {"status": status or None}
    with api:
        if experiment is not None:
            params["experiment_id"] = find_experiment(api, experiment, project=project)["id"]
        if project is not None:
            params["project_id"] = project if is_uuid(project) else find_project(api, project)["id"]
    _run_export("runs", "/api/v1/runs/export", params, fmt, output)
