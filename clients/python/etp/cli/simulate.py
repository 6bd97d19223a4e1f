"""`etp simulate` (also `bin/simulate_sensors`): simulated sensors sending through the real
ingest API with their own tokens, with faults on demand. See docs/simulator.md."""

import asyncio
import os
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from etp.cli.common import STATE, JsonOption, client, emit_json, note
from etp.config import load_url
from etp.errors import ExitCode, UsageError
from etp.resolve import find_project
from etp.simulator.engine import RetryPolicy, Simulator, run_interruptible
from etp.simulator.plan import (
    Faults,
    SensorPlan,
    parse_duration,
    parse_start,
    sensor_id_of,
)
from etp.simulator.provision import (
    NewSensor,
    bind_sensors,
    create_sensors,
    linear_profile,
    start_capture,
    stop_capture,
)
from etp.simulator.stats import ProgressLine, Summary
from etp.simulator.waveforms import WAVEFORMS, Shape

# The ingest service's default allowance per token (SENSOR_RATE): past it, batches get 429.
SERVICE_BATCHES_PER_SECOND = 50

Opt = typer.Option


def simulate(
    token: Annotated[
        list[str] | None, Opt("--token", "-t", help="A sensor token (repeat for more sensors).")
    ] = None,
    tokens_file: Annotated[
        Path | None, Opt("--tokens-file", help="Sensor tokens, one a line ('-': stdin).")
    ] = None,
    project: Annotated[
        str | None,
        Opt("--project", "-p", help="Create the sensors in this project (id or name; API key)."),
    ] = None,
    sensors: Annotated[int, Opt("--sensors", "-n", help="How many to create.", min=1)] = 3,
    name: Annotated[str, Opt("--name", help="Created sensors are named NAME-1, NAME-2…")] = "sim",
    linear: Annotated[
        str | None, Opt("--linear", help="A conversion profile for created sensors: 'A,B'.")
    ] = None,
    save_tokens: Annotated[
        Path | None, Opt("--save-tokens", help="Write the created sensors' tokens here (0600).")
    ] = None,
    run: Annotated[str | None, Opt("--run", help="Bind the sensors to this run (API key).")] = None,
    capture: Annotated[
        bool, Opt("--capture", help="Start a capture in --run now, stop it at the end.")
    ] = False,
    capture_session: Annotated[
        str | None, Opt("--capture-session", help="Name this capture session in every batch.")
    ] = None,
    waveform: Annotated[
        str, Opt("--waveform", "-w", help=f"{'|'.join(WAVEFORMS)}; a list is dealt out.")
    ] = "sine",
    amplitude: Annotated[float, Opt("--amplitude")] = 1.0,
    period: Annotated[str, Opt("--period", help="Of the waveform (bursts: between).")] = "10s",
    offset: Annotated[float, Opt("--offset")] = 0.0,
    noise: Annotated[float, Opt("--noise", help="Standard deviation of the noise.")] = 0.0,
    rate: Annotated[float, Opt("--rate", "-r", help="Readings a second per sensor.")] = 10.0,
    batch_size: Annotated[int, Opt("--batch-size", "-b", help="Readings a batch.")] = 10,
    channels: Annotated[
        str | None, Opt("--channels", help="Signals of a multi-channel sensor: 'a,b,c'.")
    ] = None,
    dropout: Annotated[
        str | None, Opt("--dropout", help="Silent for FOR after every EVERY: 'EVERY/FOR'.")
    ] = None,
    late: Annotated[float, Opt("--late", help="Fraction of batches sent late.")] = 0.0,
    late_by: Annotated[str, Opt("--late-by", help="How late.")] = "2m",
    duplicate: Annotated[
        float, Opt("--duplicate", help="Fraction of batches sent twice (same batch_id).")
    ] = 0.0,
    out_of_order: Annotated[
        float, Opt("--out-of-order", help="Fraction of batches sent after the next one.")
    ] = 0.0,
    drift: Annotated[
        float, Opt("--drift", help="Seconds the device clocks gain a minute (<0: lose).")
    ] = 0.0,
    clock_offset: Annotated[
        str, Opt("--clock-offset", help="The device clocks' error at the start (e.g. -30s).")
    ] = "0",
    start: Annotated[
        str, Opt("--start", help="When measuring starts: now, -10m (sent at once), RFC 3339.")
    ] = "now",
    duration: Annotated[
        str | None, Opt("--duration", "-d", help="How long to measure (default: until Ctrl-C).")
    ] = None,
    seed: Annotated[str | None, Opt("--seed", help="For repeatable values and faults.")] = None,
    ingest_url: Annotated[
        str | None, Opt("--ingest-url", help="Send readings here (default: the gateway).")
    ] = None,
    max_retries: Annotated[int, Opt("--max-retries", min=0)] = 5,
    max_wait: Annotated[float, Opt("--max-wait", help="Longest Retry-After followed.")] = 30.0,
    json_output: JsonOption = False,
) -> None:
    """Simulate sensors sending readings, with faults on demand; Ctrl-C stops with a summary."""
    try:
        dropout_every, dropout_for = _dropout(dropout)
        faults = Faults(
            dropout_every=dropout_every,
            dropout_for=dropout_for,
            late=late,
            late_by=parse_duration(late_by),
            duplicate=duplicate,
            out_of_order=out_of_order,
            drift=drift,
            clock_offset=parse_duration(clock_offset),
        )
        cycle = parse_duration(period)
        kinds = [kind.strip() for kind in waveform.split(",") if kind.strip()]
        shapes = [Shape(kind, amplitude, cycle, offset, noise) for kind in kinds or ["sine"]]
        run_id = uuid.UUID(run) if run else None
        session_id = uuid.UUID(capture_session) if capture_session else None
        # Every sensor's plan but its identity, checked before anything is made.
        pace = SensorPlan(
            uuid.uuid4(), "", rate=rate, batch_size=batch_size, faults=faults, run_id=run_id,
            channels=tuple(c.strip() for c in channels.split(",")) if channels else (),
        )  # fmt: skip
        measure = parse_duration(duration) if duration is not None else None
        begin = parse_start(start, now=time.time())
        profile = _linear(linear) if linear else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    given = _tokens(token or [], tokens_file)
    if given and project:
        raise UsageError("give sensor tokens or --project to create sensors, not both")
    if not given and not project:
        raise UsageError("no sensors: give --token/--tokens-file, or --project to create some")
    if capture and capture_session:
        raise UsageError("--capture starts a session of its own; drop --capture-session")
    if (capture or capture_session) and not run:
        raise UsageError("--capture and --capture-session need --run")
    url = ingest_url or load_url(STATE.url)
    _warn_about_pace(pace)
    api = client() if project or run else None
    try:
        identities = [(sensor_id_of(t), t, f"sensor-{i + 1}") for i, t in enumerate(given)]
        created: list[NewSensor] = []
        if api is not None and project:
            project_id = find_project(api, project)["id"]
            names = [f"{name}-{i + 1}" for i in range(sensors)]
            created = create_sensors(
                api, project_id, names, profile=profile, channels=pace.channels
            )
            identities = [(s.id, s.token, s.name) for s in created]
            if save_tokens is not None:
                _save_tokens(save_tokens, created)
            if not json_output:
                for sensor in created:
                    note(f"created sensor {sensor.name} ({sensor.id})")
        if api is not None and run_id is not None:
            bind_sensors(api, run_id, [identity[0] for identity in identities])
            if capture:
                session_id = start_capture(api, run_id, notes="etp simulate")
        plans = [
            replace(pace, sensor_id=sensor_id, token=secret, name=label,
                    shape=shapes[i % len(shapes)], capture_session_id=session_id)
            for i, (sensor_id, secret, label) in enumerate(identities)
        ]  # fmt: skip

        async def stop_our_capture() -> None:
            if api is not None and capture and run_id is not None and session_id is not None:
                await asyncio.to_thread(stop_capture, api, run_id, session_id)

        simulator = Simulator(
            url, plans, start=begin, duration=measure, seed=seed,
            retry=RetryPolicy(attempts=max_retries + 1, max_wait=max_wait),
            before_flush=stop_our_capture,
        )  # fmt: skip
        summary = asyncio.run(run_with_progress(simulator))
    finally:
        if api is not None:
            api.close()
    if json_output:
        emit_json(
            {
                **summary.as_json(),
                "created_sensors": [{"id": str(s.id), "name": s.name} for s in created],
                "capture_session_id": str(session_id) if session_id else None,
            }
        )
    else:
        STATE.err.print(summary.text(), highlight=False, markup=False)
    code = _exit_code(summary)
    if code != ExitCode.OK:
        raise typer.Exit(int(code))


async def run_with_progress(simulator: Simulator) -> Summary:
    """Runs the simulator (Ctrl-C: a clean stop) with its progress line on stderr."""
    line = ProgressLine(sys.stderr)

    async def show() -> None:
        while True:
            await asyncio.sleep(line.interval)
            line.show(simulator.stats.line(simulator.held))

    progress = None if STATE.quiet else asyncio.create_task(show())
    try:
        return await run_interruptible(simulator)
    finally:
        if progress is not None:
            progress.cancel()
            line.clear()


def _exit_code(summary: Summary) -> ExitCode:
    stats = summary.stats
    if summary.sensors and all(tally.refused for tally in summary.sensors):
        return ExitCode.AUTH
    if stats.points_failed and not stats.points_accepted:
        return ExitCode.UNAVAILABLE
    return ExitCode.OK if summary.ok else ExitCode.OTHER


def _dropout(text: str | None) -> tuple[float, float]:
    if not text:
        return 0.0, 0.0
    every, sep, silent = text.partition("/")
    if not sep:
        raise ValueError("--dropout is EVERY/FOR, e.g. 30s/5s")
    return parse_duration(every), parse_duration(silent)


def _linear(text: str) -> dict[str, object]:
    a, _, b = text.partition(",")
    try:
        return linear_profile(float(a), float(b or 0))
    except ValueError:
        raise ValueError("--linear is 'A,B' (physical = A·raw + B)") from None


def _tokens(given: list[str], file: Path | None) -> list[str]:
    tokens = [t.strip() for t in given if t.strip()]
    if file is not None:
        text = sys.stdin.read() if str(file) == "-" else file.read_text()
        tokens += [line.strip() for line in text.splitlines() if line.strip()]
    for value in tokens:
        try:
            sensor_id_of(value)
        except ValueError as exc:
            raise UsageError(f"{exc}: {value[:12]}…") from None
    return tokens


def _save_tokens(path: Path, sensors: list[NewSensor]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"{sensor.token}\n" for sensor in sensors)


def _warn_about_pace(plan: SensorPlan) -> None:
    batches = plan.rate / plan.ticks_per_batch
    if batches > 0.8 * SERVICE_BATCHES_PER_SECOND and not STATE.quiet:
        STATE.err.print(
            f"note: {batches:,.0f} batches a second per sensor; the ingest service takes "
            f"{SERVICE_BATCHES_PER_SECOND} by default (429 beyond): raise --batch-size",
            highlight=False,
        )
