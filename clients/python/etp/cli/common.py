"""What every command shares: `--json`, where output goes, the client, progress bars.

With `--json`, stdout carries the machine output alone (one JSON document, or JSON lines for
streams) and an error is one JSON object on stderr; people's text, tables and progress go to
stdout (results) and stderr (progress, notes) without it. Progress never goes to stdout.
"""

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from etp.client import Client
from etp.config import load_config
from etp.errors import ApiError, EtpError, UsageError


def _console() -> Console:
    # Piped into a file or another program, tables keep their width instead of 80 columns.
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(soft_wrap=True, width=200 if wide else None)


@dataclass
class State:
    json: bool = False
    quiet: bool = False
    url: str | None = None
    api_key: str | None = None
    out: Console = field(default_factory=lambda: _console())
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))


STATE = State()


def _set_json(value: bool) -> bool:
    if value:
        STATE.json = True
    return value


JsonOption = Annotated[
    bool,
    typer.Option(
        "--json", help="Machine output on stdout (JSON) only.", callback=_set_json, is_eager=True
    ),
]


def client(**options: Any) -> Client:
    """The client for the configured URL and key (arguments, environment, `etp login`'s file).
    A refused connection is tried twice more (under a second) before the command gives up."""
    options.setdefault("connect_retries", 2)
    return Client.from_config(load_config(url=STATE.url, api_key=STATE.api_key), **options)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, allow_nan=False) + "\n")
    sys.stdout.flush()


def emit(data: Any, human: Any = None) -> None:
    """A command's result: JSON with `--json`, else `human` (text, a table) or the JSON."""
    if STATE.json:
        emit_json(data)
    elif human is not None:
        STATE.out.print(human)
    else:
        STATE.out.print_json(json.dumps(data, ensure_ascii=False))


def note(text: str) -> None:
    """A line for people, on stderr (never in the way of `--json` output)."""
    if not STATE.quiet:
        STATE.err.print(text, highlight=False)


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> Table:
    view = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        if column == "id" or column.endswith("_id"):  # never cut: people copy them
            view.add_column(column, no_wrap=True, min_width=36)
        else:
            view.add_column(column)
    for row in rows:
        view.add_row(*(_cell(row.get(column)) for column in columns))
    return view


def details(item: dict[str, Any]) -> Table:
    view = Table(show_header=False, show_edge=False, box=None)
    view.add_column(style="bold")
    view.add_column()
    for key, value in item.items():
        view.add_row(key, _cell(value))
    return view


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def key_values(pairs: list[str], what: str) -> dict[str, Any]:
    """`key=value` arguments; a value that reads as JSON (1e-3, true, [1,2]) is taken as such."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} are key=value, not {pair!r}")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def report(error: BaseException) -> None:
    """Prints an error on stderr: a JSON object with `--json`, else the detail and request id."""
    if isinstance(error, EtpError):
        if STATE.json:
            sys.stderr.write(json.dumps({"error": error.as_dict()}) + "\n")
            return
        head = f"error: {error.detail}"
        if isinstance(error, ApiError):
            status = f"{error.status} " if error.status is not None else ""
            head += f" ({status}{error.code})"
        STATE.err.print(head, highlight=False, markup=False)
        if isinstance(error, ApiError):
            for item in (error.errors or [])[:10]:
                where = item.get("field") or item.get("loc") or ""
                STATE.err.print(f"  {where}: {item.get('message', item)}", markup=False)
            if error.request_id:
                STATE.err.print(f"request_id: {error.request_id}", highlight=False)
        return
    if STATE.json:
        body = {"status": None, "code": "internal", "detail": repr(error), "request_id": None}
        sys.stderr.write(json.dumps({"error": body}) + "\n")
    else:
        STATE.err.print(f"error: {error!r}", markup=False)


@contextmanager
def transfer(description: str, total: int | None) -> Iterator[Any]:
    """A byte progress bar on stderr (hidden when stderr is not a terminal or with --quiet);
    yields a function taking the bytes done so far."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=STATE.err,
        transient=True,
        disable=STATE.quiet,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)


@contextmanager
def counter(description: str, unit: str) -> Iterator[Any]:
    """A running count on stderr (no total known); yields a function taking the count so far."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f} " + unit),
        console=STATE.err,
        transient=True,
        disable=STATE.quiet,
    )
    with progress:
        task = progress.add_task(description, total=None)
        yield lambda done: progress.update(task, completed=done)
