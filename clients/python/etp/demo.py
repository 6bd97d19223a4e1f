"""`etp demo`: a populated project on a running stack, for a first look at the portal.

Each call builds a new demo project (names end in a fresh suffix: the people's passwords are
shown once and kept nowhere, so an earlier demo's owner cannot be signed in as again):

- three people, one per role (owner, editor, viewer), with random passwords, and an API key of
  the owner's through which everything else is made;
- a wind-tunnel experiment with three sensors (pressure, temperature, strain), each with a
  conversion profile (linear, polynomial, table), two runs with params and metrics, each with a
  recorded capture session of a few minutes of readings (stamped in the minutes before the demo
  ran, sent at once: session 1 has a dropout, session 2 readings that arrive after its capture
  stopped, stored as late), and a third run that stays running for the live part;
- a model-training experiment with three runs of params and loss/accuracy curves.

Then (stream_live) the three sensors stream into a running capture of the third run until
stopped (Ctrl-C); the capture is then stopped and the run finished, so the data stays.
"""

import asyncio
import math
import random
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from etp.client import Client
from etp.simulator.engine import Simulator
from etp.simulator.plan import Faults, SensorPlan
from etp.simulator.provision import NewSensor, bind_sensors, start_capture, stop_capture
from etp.simulator.stats import Summary
from etp.simulator.waveforms import Shape

ROLES = ("owner", "editor", "viewer")
LIVE_RATE = 10.0  # readings a second per sensor while streaming: one batch a second


@dataclass(frozen=True)
class DemoOptions:
    recorded_seconds: float = 180.0  # of readings per recorded capture session
    rate: float = 20.0  # readings a second per sensor in the recorded sessions
    metric_steps: int = 200

    @classmethod
    def quick(cls) -> "DemoOptions":
        """Small enough for a test: seconds of data, a few metric steps."""
        return cls(recorded_seconds=20.0, rate=10.0, metric_steps=20)


@dataclass(frozen=True)
class _SensorKind:
    name: str
    type: str
    input_unit: str
    display_unit: str
    profile: dict[str, Any]
    shape: Shape


SENSORS = (
    _SensorKind(
        "pitot-pressure",
        "pressure",
        "mV",
        "Pa",
        {"version": "cal-2026-01", "kind": "linear", "payload": {"a": 2.5, "b": -12.0}},
        Shape("sine", amplitude=60.0, period=45.0, offset=420.0, noise=2.0),
    ),
    _SensorKind(
        "inlet-thermocouple",
        "temperature",
        "mV",
        "degC",
        {
            "version": "type-k",
            "kind": "polynomial",
            "payload": {"coefficients": [0.0, 25.08, -0.0786, 0.0503]},
        },
        Shape("walk", amplitude=0.05, period=20.0, offset=0.9, noise=0.002),
    ),
    _SensorKind(
        "balance-strain",
        "strain",
        "mV",
        "ustrain",
        {
            "version": "bench-7",
            "kind": "table",
            "payload": {
                "points": [{"x": 0, "y": 0}, {"x": 5, "y": 480}, {"x": 10, "y": 1010}],
                "extrapolate": True,
            },
        },
        Shape("bursts", amplitude=3.0, period=25.0, offset=2.0, noise=0.05),
    ),
)


@dataclass
class Demo:
    """What was made: ids for the API, and the secrets shown once."""

    url: str
    project: dict[str, Any] = field(default_factory=dict)
    people: list[dict[str, str]] = field(default_factory=list)
    api_key: str = ""
    experiments: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    sensors: list[NewSensor] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    live_run_id: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "project": self.project,
            "people": self.people,
            "api_key": self.api_key,
            "experiments": self.experiments,
            "runs": self.runs,
            "sensors": [{"id": str(s.id), "name": s.name} for s in self.sensors],
            "capture_sessions": self.sessions,
            "live_run_id": self.live_run_id,
        }


def build(url: str, options: DemoOptions, say: Callable[[str], None]) -> Demo:
    """Makes the demo project and everything in it but the live stream."""
    demo = Demo(url=url.rstrip("/"))
    suffix = secrets.token_hex(3)
    with Client(demo.url, None) as anonymous:
        for role in ROLES:
            username = f"demo-{role}-{suffix}"
            password = secrets.token_urlsafe(12)
            anonymous.post(
                "/api/v1/auth/register",
                {"username": username, "email": f"{username}@example.org", "password": password},
            )
            demo.people.append({"role": role, "username": username, "password": password})
        tokens = anonymous.post(
            "/api/v1/auth/login",
            {"username": demo.people[0]["username"], "password": demo.people[0]["password"]},
        )
    with Client(demo.url, tokens["access_token"]) as signed_in:
        demo.api_key = signed_in.post("/api/v1/api-keys", {"name": f"etp demo {suffix}"})["key"]
    say(f"people: {', '.join(p['username'] for p in demo.people)}")
    with Client(demo.url, demo.api_key) as client:
        _project(client, demo, suffix)
        _training(client, demo, options)
        _wind_tunnel(client, demo, options, say)
    return demo


def _project(client: Client, demo: Demo, suffix: str) -> None:
    project = client.post(
        "/api/v1/projects",
        {
            "name": f"ETP demo {suffix}",
            "description": "Made by `etp demo`: sensors, capture sessions, runs and metrics.",
        },
    )
    demo.project = {"id": project["id"], "name": project["name"]}
    for person in demo.people[1:]:
        client.post(
            f"/api/v1/projects/{project['id']}/members",
            {"username": person["username"], "role": person["role"]},
        )


def _experiment(client: Client, demo: Demo, name: str, kind: str, description: str) -> str:
    experiment = client.post(
        "/api/v1/experiments",
        {
            "project_id": demo.project["id"],
            "name": name,
            "description": description,
            "experiment_type": kind,
            "tags": ["demo"],
        },
    )
    client.patch(f"/api/v1/experiments/{experiment['id']}", {"status": "running"})
    demo.experiments.append({"id": experiment["id"], "name": name})
    return str(experiment["id"])


def _run(client: Client, demo: Demo, experiment_id: str, name: str, params: dict[str, Any]) -> str:
    run = client.post(
        f"/api/v1/experiments/{experiment_id}/runs",
        {"name": name, "params": params, "tags": ["demo"], "git_sha": secrets.token_hex(20)},
    )
    client.patch(f"/api/v1/runs/{run['id']}", {"status": "running"})
    demo.runs.append({"id": run["id"], "name": name, "status": "running"})
    return str(run["id"])


def _finish(client: Client, demo: Demo, run_id: str, status: str = "succeeded") -> None:
    client.patch(f"/api/v1/runs/{run_id}", {"status": status})
    for run in demo.runs:
        if run["id"] == run_id:
            run["status"] = status


def _metrics(client: Client, run_id: str, series: dict[str, list[float]]) -> None:
    points = [
        {"name": name, "step": step, "value": round(value, 6)}
        for name, values in series.items()
        for step, value in enumerate(values)
    ]
    client.post(f"/api/v1/runs/{run_id}/metrics", {"batch_id": "demo", "metrics": points})


def _training(client: Client, demo: Demo, options: DemoOptions) -> None:
    experiment_id = _experiment(
        client,
        demo,
        "Surrogate model training",
        "ml",
        "A network predicting lift from the tunnel's sensors.",
    )
    trials = ((3e-4, "succeeded", 0.08), (1e-3, "succeeded", 0.05), (1e-2, "failed", 0.9))
    for index, (lr, outcome, floor) in enumerate(trials):
        run_id = _run(
            client,
            demo,
            experiment_id,
            f"lr={lr:g}",
            {
                "learning_rate": lr,
                "batch_size": 64,
                "epochs": options.metric_steps,
                "optimizer": "adam",
                "seed": index,
            },
        )
        rng = random.Random(index)
        speed = 0.02 + 4 * lr
        top = 0.96 - floor / 2
        steps = range(options.metric_steps)
        loss = [floor + 2 * math.exp(-speed * s) + rng.gauss(0, 0.01) for s in steps]
        accuracy = [top - 0.5 * math.exp(-speed * s) for s in steps]
        _metrics(client, run_id, {"train/loss": loss, "val/accuracy": accuracy})
        _finish(client, demo, run_id, outcome)


def _wind_tunnel(
    client: Client, demo: Demo, options: DemoOptions, say: Callable[[str], None]
) -> None:
    experiment_id = _experiment(
        client,
        demo,
        "Airfoil NACA 2412 sweep",
        "wind-tunnel",
        "Lift and drag from 10 to 40 m/s; two probes compared.",
    )
    for kind in SENSORS:
        sensor = client.post(
            "/api/v1/sensors",
            {
                "project_id": demo.project["id"],
                "name": kind.name,
                "type": kind.type,
                "input_unit": kind.input_unit,
                "display_unit": kind.display_unit,
                "conversion_profile": kind.profile,
            },
        )
        demo.sensors.append(NewSensor(uuid.UUID(sensor["id"]), sensor["name"], sensor["token"]))
    span = options.recorded_seconds
    now = time.time()
    # Session 1: the thermocouple drops out for a while. Session 2 ends now, and its pressure
    # batches arrive a quarter of it late: those of its last quarter after the capture stopped.
    recordings: list[tuple[str, str, float, dict[int, Faults]]] = [
        (
            "sweep, probe A",
            "pitot-A",
            now - 2 * span - 30,
            {1: Faults(dropout_every=span / 2, dropout_for=span / 6)},
        ),
        ("sweep, probe B", "pitot-B", now - span, {0: Faults(late=1.0, late_by=span / 4)}),
    ]
    for ordinal, (name, probe, start, faults) in enumerate(recordings, start=1):
        run_id = _run(
            client,
            demo,
            experiment_id,
            name,
            {"airspeed_min": 10, "airspeed_max": 40, "angle_of_attack": 4, "probe": probe},
        )
        shift = 0.03 * ordinal
        steps = range(options.metric_steps)
        lift = [0.1 + shift + 0.9 * (1 - math.exp(-s / 40)) for s in steps]
        drag = [0.02 + 0.0001 * s + shift / 10 for s in steps]
        _metrics(client, run_id, {"lift_coefficient": lift, "drag_coefficient": drag})
        bind_sensors(client, run_id, [s.id for s in demo.sensors])
        summary = _record(client, demo, run_id, name, start, options, faults, seed=ordinal)
        _finish(client, demo, run_id)
        late = summary.stats.points_late
        say(
            f"capture session of run {name!r}: {summary.stats.points_accepted:,} readings"
            + (f" ({late:,} late)" if late else "")
        )
    demo.live_run_id = _run(
        client,
        demo,
        experiment_id,
        "continuous monitoring",
        {"airspeed_min": 25, "airspeed_max": 25, "angle_of_attack": 4, "probe": "pitot-B"},
    )
    bind_sensors(client, demo.live_run_id, [s.id for s in demo.sensors])


def _record(
    client: Client,
    demo: Demo,
    run_id: str,
    name: str,
    start: float,
    options: DemoOptions,
    faults: dict[int, Faults],
    seed: int,
) -> Summary:
    """A capture session of `options.recorded_seconds` of readings from `start`, sent at once;
    the capture is stopped before the batches held back as late are sent."""
    session_id = start_capture(client, run_id, notes=f"{name}: recorded by etp demo")
    plans = [
        SensorPlan(
            sensor.id,
            sensor.token,
            sensor.name,
            kind.shape,
            rate=options.rate,
            batch_size=int(options.rate * 5),
            faults=faults.get(index, Faults()),
            run_id=uuid.UUID(run_id),
            capture_session_id=session_id,
        )
        for index, (sensor, kind) in enumerate(zip(demo.sensors, SENSORS, strict=True))
    ]

    async def stop() -> None:
        await asyncio.to_thread(stop_capture, client, run_id, session_id)

    simulator = Simulator(
        demo.url,
        plans,
        start=start,
        duration=options.recorded_seconds,
        seed=seed,
        before_flush=stop,
    )
    summary = asyncio.run(simulator.run())
    demo.sessions.append(
        {
            "id": str(session_id),
            "run_id": run_id,
            "readings": summary.stats.points_accepted,
            "late": summary.stats.points_late,
        }
    )
    return summary


def live_simulator(
    client: Client, demo: Demo, duration: float | None
) -> tuple[Simulator, uuid.UUID]:
    """The three sensors streaming into a new capture of the live run; when the simulator
    stops, the capture is stopped and the run finished."""
    session_id = start_capture(client, demo.live_run_id, notes="live: streamed by etp demo")
    demo.sessions.append(
        {"id": str(session_id), "run_id": demo.live_run_id, "readings": 0, "late": 0}
    )
    plans = [
        SensorPlan(
            sensor.id,
            sensor.token,
            sensor.name,
            kind.shape,
            rate=LIVE_RATE,
            batch_size=int(LIVE_RATE),
            run_id=uuid.UUID(demo.live_run_id),
            capture_session_id=session_id,
        )
        for sensor, kind in zip(demo.sensors, SENSORS, strict=True)
    ]

    async def finish() -> None:
        await asyncio.to_thread(stop_capture, client, demo.live_run_id, session_id)
        await asyncio.to_thread(_finish, client, demo, demo.live_run_id)

    simulator = Simulator(demo.url, plans, duration=duration, before_flush=finish)
    return simulator, session_id


def note_live(demo: Demo, summary: Summary) -> None:
    demo.sessions[-1]["readings"] = summary.stats.points_accepted
    demo.sessions[-1]["late"] = summary.stats.points_late
