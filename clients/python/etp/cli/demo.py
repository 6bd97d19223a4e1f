"""`etp demo` (also `make demo`): a populated demo project on a running stack, then three
sensors streaming into a running capture until Ctrl-C. See etp.demo for what is made."""

import asyncio
from typing import Annotated

import typer

from etp.cli.common import STATE, JsonOption, emit_json, note
from etp.cli.simulate import run_with_progress
from etp.client import Client
from etp.config import load_url
from etp.demo import Demo, DemoOptions, build, live_simulator, note_live
from etp.errors import UsageError
from etp.simulator.plan import parse_duration


def demo(
    quick: Annotated[
        bool, typer.Option("--quick", help="Seconds of recorded readings, not minutes (tests).")
    ] = False,
    live_for: Annotated[
        str | None,
        typer.Option(
            "--live-for", help="Stream this long, then stop (default: until Ctrl-C; 0: no stream)."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Make a demo project (people in every role, runs, sensors, capture sessions) and stream
    live readings into it until Ctrl-C. Each call makes a new project."""
    try:
        streaming = parse_duration(live_for) if live_for is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    url = load_url(STATE.url)
    made = build(url, DemoOptions.quick() if quick else DemoOptions(), note)
    if json_output:
        emit_json(made.as_json())
    else:
        _show(made)
    if streaming is not None and streaming <= 0:
        return
    with Client(url, made.api_key) as api:
        simulator, session_id = live_simulator(api, made, streaming)
        note(
            f"streaming {len(made.sensors)} sensors into capture session {session_id} of run "
            f"'continuous monitoring'; Ctrl-C stops the capture (the data stays) and the run"
        )
        summary = asyncio.run(run_with_progress(simulator))
    note_live(made, summary)
    note(summary.text())
    note(f"capture session {session_id} stopped; run {made.live_run_id} succeeded")


def _show(made: Demo) -> None:
    out = STATE.out
    recorded = [s for s in made.sessions if s["run_id"] != made.live_run_id]
    readings = " and ".join(f"{session['readings']:,}" for session in recorded)
    lines = [
        f"ETP demo ready at {made.url}: project {made.project['name']!r} ({made.project['id']})",
        "",
        "Sign in to the portal as (the passwords are shown only now):",
        *(f"  {p['role']:<7} {p['username']:<22} {p['password']}" for p in made.people),
        "",
        "The owner's API key (scripts; etp login --url URL --api-key KEY):",
        f"  {made.api_key}",
        "",
        f"Made {len(made.experiments)} experiments, {len(made.runs)} runs with params and "
        f"metrics, {len(made.sensors)} sensors with conversion profiles and "
        f"{len(recorded)} recorded capture sessions "
        f"({readings} readings).",
    ]
    for line in lines:
        out.print(line, highlight=False, markup=False)
