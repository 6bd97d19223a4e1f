"""What the simulator (and the demo) set up through the public API with an API key: sensors in a
project (each token is shown once, here), their binding to a run, a capture session around the
run. All of it through `etp.client.Client`; only the readings take the ingest path."""

import uuid
from dataclasses import dataclass
from typing import Any

from etp.client import Client
from etp.errors import ApiError


@dataclass(frozen=True)
class NewSensor:
    id: uuid.UUID
    name: str
    token: str


def linear_profile(a: float, b: float = 0.0, version: str = "v1") -> dict[str, Any]:
    """A first conversion profile for create_sensors: physical = a·raw + b."""
    return {"version": version, "kind": "linear", "payload": {"a": a, "b": b}}


def create_sensors(
    client: Client,
    project_id: uuid.UUID | str,
    names: list[str],
    *,
    sensor_type: str = "simulated",
    input_unit: str = "mV",
    display_unit: str = "V",
    profile: dict[str, Any] | None = None,
    channels: tuple[str, ...] = (),
) -> list[NewSensor]:
    """Sensors of the project; given `channels` (the meta.signal names a multi-channel sensor
    sends), each declares them, so ingest refuses readings on any other."""
    created = []
    for name in names:
        body: dict[str, Any] = {
            "project_id": str(project_id),
            "name": name,
            "type": sensor_type,
            "input_unit": input_unit,
            "display_unit": display_unit,
            "description": "Created by the ETP sensor simulator.",
        }
        if profile is not None:
            body["conversion_profile"] = profile
        if channels:
            body["channels"] = [{"name": name, "unit": display_unit} for name in channels]
        sensor = client.post("/api/v1/sensors", body)
        created.append(NewSensor(uuid.UUID(sensor["id"]), sensor["name"], sensor["token"]))
    return created


def bind_sensors(client: Client, run_id: uuid.UUID | str, sensor_ids: list[uuid.UUID]) -> None:
    """Binds each sensor to the run; one already bound is fine."""
    for sensor_id in sensor_ids:
        try:
            client.post(f"/api/v1/runs/{run_id}/sensors", {"sensor_id": str(sensor_id)})
        except ApiError as exc:
            if exc.status != 409:
                raise


def start_capture(client: Client, run_id: uuid.UUID | str, notes: str = "") -> uuid.UUID:
    session = client.post(f"/api/v1/runs/{run_id}/capture-sessions", {"notes": notes})
    return uuid.UUID(session["id"])


def stop_capture(
    client: Client, run_id: uuid.UUID | str, session_id: uuid.UUID | str
) -> dict[str, Any]:
    stopped: dict[str, Any] = client.post(
        f"/api/v1/runs/{run_id}/capture-sessions/{session_id}/stop", {}
    )
    return stopped
