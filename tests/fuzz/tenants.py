"""Two users, each owning a project with one of every resource in it, made through the real
services: the fuzzer works as the first and feeds the second one's ids to the first one's calls.

    tenant = Tenant.sign_up(urls, "fuzzer")
    tenant.ids["run"], tenant.headers, tenant.sensor_headers
"""

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

PASSWORD = "fuzzing password 1"
# Access tokens live 15 minutes.
TOKEN_REFRESH_AFTER = 10 * 60
# A public address, so the webhook target guard accepts it without a DNS lookup; no dispatcher
# runs in tests, so nothing is ever sent there.
WEBHOOK_TARGET = "https://93.184.216.34/etp-fuzz"


# A tenant's resources as their owner reads them.
SNAPSHOT = (
    ("auth", "/api/v1/projects/{project}"),
    ("auth", "/api/v1/projects/{project}/members"),
    ("experiment", "/api/v1/experiments/{experiment}"),
    ("experiment", "/api/v1/runs/{run}"),
    ("experiment", "/api/v1/runs/{run}/capture-sessions/{capture_session}"),
    ("experiment", "/api/v1/runs/{run}/sensors"),
    ("experiment", "/api/v1/sensors/{sensor}"),
    ("experiment", "/api/v1/sensors/{sensor}/projects"),
    ("experiment", "/api/v1/sensors/{sensor}/conversion-profiles/{profile}"),
    ("experiment", "/api/v1/webhooks/{webhook}"),
    ("experiment", "/api/v1/webhooks/{webhook}/deliveries"),
    ("experiment", "/api/v1/audit?project_id={project}"),
    ("telemetry_ingest", "/api/v1/telemetry?sensor_id={sensor}"),
)


@dataclass
class Tenant:
    username: str
    access_token: str
    refresh_token: str
    sensor_token: str
    # Resource kind (project, experiment, run, capture_session, sensor, profile, webhook,
    # delivery, user) -> the id of this tenant's one.
    ids: dict[str, str] = field(default_factory=dict)
    logged_in_at: float = field(default_factory=time.monotonic)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    @property
    def sensor_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sensor_token}"}

    def still_there(self, urls: dict[str, str]) -> bool:
        """False once the databases were emptied under it (by another test); logs in again
        before the access token gets old (a long run outlives it)."""
        if time.monotonic() - self.logged_in_at > TOKEN_REFRESH_AFTER:
            login = requests.post(
                urls["auth"] + "/api/v1/auth/login",
                json={"username": self.username, "password": PASSWORD},
                timeout=30,
            )
            if login.status_code != 200:
                return False
            self.access_token = login.json()["access_token"]
            self.refresh_token = login.json()["refresh_token"]
            self.logged_in_at = time.monotonic()
        url = f"{urls['auth']}/api/v1/projects/{self.ids['project']}"
        return requests.get(url, headers=self.headers, timeout=30).status_code == 200

    def snapshot(self, urls: dict[str, str]) -> dict[str, Any]:
        """What a reader of this tenant's resources sees (status and body of each)."""
        seen = {}
        with requests.Session() as http:
            for service, template in SNAPSHOT:
                path = template.format(**self.ids)
                response = http.get(urls[service] + path, headers=self.headers, timeout=30)
                seen[path] = (response.status_code, _timeless(response.json()))
        return seen

    @classmethod
    def sign_up(cls, urls: dict[str, str], label: str) -> "Tenant":
        with requests.Session() as http:
            return _Seeder(http, urls).tenant(label)


def differences(before: Any, after: Any, where: str = "") -> list[str]:
    """Where two JSON values differ, as `path: old -> new` lines."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            line
            for key in sorted(before.keys() | after.keys(), key=str)
            for line in differences(before.get(key), after.get(key), f"{where}/{key}")
        ]
    sequences = isinstance(before, list | tuple) and isinstance(after, list | tuple)
    if sequences and len(before) == len(after):
        return [
            line
            for index, (old, new) in enumerate(zip(before, after, strict=True))
            for line in differences(old, new, f"{where}/{index}")
        ]
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"]


_WRITTEN_BEHIND = frozenset({"status", "last_heartbeat", "token_last_used_at"})


def _timeless(value: Any) -> Any:
    """Without what changes by itself: a sensor's last heartbeat and token use are written
    behind the batches it sent, and its status follows that heartbeat's age."""
    if isinstance(value, list):
        return [_timeless(item) for item in value]
    if isinstance(value, dict):
        return {
            key: _timeless(item)
            for key, item in value.items()
            if not (key in _WRITTEN_BEHIND and "last_heartbeat" in value)
        }
    return value


@dataclass
class _Seeder:
    http: requests.Session
    urls: dict[str, str]

    def call(self, service: str, method: str, path: str, status: int = 201, **kwargs: Any) -> Any:
        response = self.http.request(method, self.urls[service] + path, timeout=30, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def tenant(self, label: str) -> Tenant:
        name = f"{label}{uuid.uuid4().hex[:8]}"
        user = self.call(
            "auth",
            "POST",
            "/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
        )
        tokens = self.call(
            "auth",
            "POST",
            "/api/v1/auth/login",
            status=200,
            json={"username": name, "password": PASSWORD},
        )
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        ids = {"user": user["id"]}
        ids["project"] = self.call(
            "auth", "POST", "/api/v1/projects", json={"name": f"{label} project"}, headers=auth
        )["id"]
        ids.update(self._experiments(auth, ids["project"]))
        sensor = self.call(
            "experiment",
            "POST",
            "/api/v1/sensors",
            headers=auth,
            json={
                "project_id": ids["project"],
                "name": f"{label} sensor",
                "type": "thermocouple",
                "input_unit": "mV",
                "display_unit": "degC",
            },
        )
        ids.update(self._sensor_things(auth, ids, sensor["id"]))
        self._telemetry(sensor["token"], ids)
        return Tenant(
            username=name,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            sensor_token=sensor["token"],
            ids=ids,
        )

    def _experiments(self, auth: dict[str, str], project_id: str) -> dict[str, str]:
        # The webhook first, so that the run's creation has a delivery for it.
        webhook = self.call(
            "experiment",
            "POST",
            "/api/v1/webhooks",
            headers=auth,
            json={
                "project_id": project_id,
                "target_url": WEBHOOK_TARGET,
                "event_types": ["run.created"],
            },
        )
        experiment = self.call(
            "experiment",
            "POST",
            "/api/v1/experiments",
            headers=auth,
            json={"project_id": project_id, "name": "fuzzed experiment"},
        )
        run = self.call(
            "experiment",
            "POST",
            f"/api/v1/experiments/{experiment['id']}/runs",
            headers=auth,
            json={"name": "fuzzed run"},
        )
        run_url = f"/api/v1/runs/{run['id']}"
        self.call(
            "experiment",
            "PATCH",
            run_url,
            status=200,
            headers=auth,
            json={"status": "running"},
        )
        session = self.call(
            "experiment", "POST", f"{run_url}/capture-sessions", headers=auth, json={}
        )
        deliveries = self.call(
            "experiment",
            "GET",
            f"/api/v1/webhooks/{webhook['id']}/deliveries",
            status=200,
            headers=auth,
        )
        return {
            "webhook": webhook["id"],
            "delivery": deliveries["items"][0]["id"],
            "experiment": experiment["id"],
            "run": run["id"],
            "capture_session": session["id"],
        }

    def _sensor_things(self, auth: dict[str, str], ids: dict[str, str], sensor_id: str) -> dict:
        profile = self.call(
            "experiment",
            "POST",
            f"/api/v1/sensors/{sensor_id}/conversion-profiles",
            headers=auth,
            json={"version": "v1", "kind": "linear", "payload": {"a": 2.0, "b": 1.0}},
        )
        self.call(
            "experiment",
            "POST",
            f"/api/v1/runs/{ids['run']}/sensors",
            headers=auth,
            json={"sensor_id": sensor_id},
        )
        return {"sensor": sensor_id, "profile": profile["id"]}

    def _telemetry(self, sensor_token: str, ids: dict[str, str]) -> None:
        now = datetime.now(UTC).isoformat()
        self.call(
            "telemetry_ingest",
            "POST",
            "/api/v1/telemetry",
            status=202,
            headers={"Authorization": f"Bearer {sensor_token}"},
            json={
                "sensor_id": ids["sensor"],
                "run_id": ids["run"],
                "readings": [{"timestamp": now, "raw_value": 1.5}],
            },
        )
