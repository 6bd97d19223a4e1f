"""`etp watch`: live readings from the telemetry stream. On a terminal, a table per sensor and
signal that updates in place; otherwise one line per reading; with `--json`, one JSON line per
reading (the reading as the API gives it)."""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from etp.cli.common import STATE, JsonOption, client, emit_json, note
from etp.cli.export import Layer, SignalOption, readings_of
from etp.sse import follow

SPARKS = "▁▂▃▄▅▆▇█"


@dataclass
class Series:
    count: int = 0
    last: float | None = None
    low: float | None = None
    high: float | None = None
    at: str = ""
    recent: list[float] = field(default_factory=list)
    first_seen: float = field(default_factory=time.monotonic)

    def add(self, value: float | None, at: str) -> None:
        self.count += 1
        self.at = at
        if value is None:
            return
        self.last = value
        self.low = value if self.low is None else min(self.low, value)
        self.high = value if self.high is None else max(self.high, value)
        self.recent = [*self.recent[-39:], value]

    def spark(self) -> str:
        if not self.recent:
            return ""
        low, high = min(self.recent), max(self.recent)
        span = (high - low) or 1.0
        return "".join(SPARKS[int((v - low) / span * (len(SPARKS) - 1))] for v in self.recent)

    def rate(self) -> float:
        return self.count / max(1e-3, time.monotonic() - self.first_seen)


def _value(reading: dict[str, Any], layer: Layer) -> float | None:
    value = reading.get("physical_value") if layer is Layer.physical else None
    if value is None:
        value = reading.get("raw_value")
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _view(series: dict[tuple[str, str], Series]) -> Table:
    view = Table(title="live readings (Ctrl-C to stop)", header_style="bold")
    for column in ("sensor", "signal", "last", "min", "max", "readings", "/s", "at", ""):
        view.add_column(column, justify="right" if column in ("last", "min", "max") else "left")
    for (sensor, signal), s in sorted(series.items()):
        view.add_row(
            sensor[:8],
            signal,
            f"{s.last:.4g}" if s.last is not None else "-",
            f"{s.low:.4g}" if s.low is not None else "-",
            f"{s.high:.4g}" if s.high is not None else "-",
            f"{s.count:,}",
            f"{s.rate():.1f}",
            s.at[11:23],
            s.spark(),
        )
    return view


def watch(
    sensor: Annotated[list[str] | None, typer.Option("--sensor", help="Repeat, up to 20.")] = None,
    run: Annotated[str | None, typer.Option("--run")] = None,
    capture: Annotated[str | None, typer.Option("--capture", help="A capture session.")] = None,
    layer: Annotated[Layer, typer.Option("--layer")] = Layer.physical,
    signal: SignalOption = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many readings.")
    ] = None,
    seconds: Annotated[
        float | None, typer.Option("--seconds", min=0.1, help="Stop after this long.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Live readings of sensors, a run or a capture session (from now on)."""
    params = readings_of(sensor, run, capture, layer, signal)
    api = client()
    stopped = threading.Event()
    timer = None
    if seconds is not None:

        def stop() -> None:  # closing the client ends a read that waits for the next event
            stopped.set()
            api.close()

        timer = threading.Timer(seconds, stop)
        timer.daemon = True
        timer.start()
    seen = 0
    series: dict[tuple[str, str], Series] = {}
    live = STATE.out.is_terminal and not STATE.json
    display = Live(_view(series), console=STATE.out, auto_refresh=False) if live else None

    def readings() -> Iterator[dict[str, Any]]:
        for event in follow(api, "/api/v1/telemetry/stream", params):
            if event.event == "readings":
                yield from event.json().get("readings", [])

    try:
        if display:
            display.start()
        last_draw = 0.0
        for reading in readings():
            seen += 1
            if STATE.json:
                emit_json(reading)
            elif display:
                key = (str(reading.get("sensor_id")), str(reading.get("signal")))
                series.setdefault(key, Series()).add(_value(reading, layer), reading["timestamp"])
                if time.monotonic() - last_draw > 0.2:
                    display.update(_view(series), refresh=True)
                    last_draw = time.monotonic()
            else:
                value = _value(reading, layer)
                STATE.out.print(
                    f"{reading['timestamp']} {reading.get('sensor_id')} "
                    f"{reading.get('signal')} {value}",
                    highlight=False,
                )
            if count is not None and seen >= count:
                break
    except Exception:
        if not stopped.is_set():
            raise
    except KeyboardInterrupt:
        pass
    finally:
        if timer:
            timer.cancel()
        if display:
            display.update(_view(series), refresh=True)
            display.stop()
        api.close()
    note(f"{seen:,} readings")
