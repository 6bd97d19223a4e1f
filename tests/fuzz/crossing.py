"""Real ids in generated requests: each id-shaped value schemathesis generated for a parameter or
body field that names a resource is kept, or swapped for the fuzzer's own resource of that kind
(so the call reaches the code past the lookup), or for the other tenant's (so the call must be
refused). The choice is a function of the generated case, so a seed replays it."""

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fuzz.tenants import WEBHOOK_TARGET, Tenant

# Parameter or body field name -> the kind of resource it names.
KINDS = {
    "project_id": "project",
    "experiment_id": "experiment",
    "run_id": "run",
    "run_ids": "run",
    "session_id": "capture_session",
    "capture_session_id": "capture_session",
    "sensor_id": "sensor",
    "profile_id": "profile",
    "webhook_id": "webhook",
    "delivery_id": "delivery",
    "user_id": "user",
    "actor_id": "user",
}
# Users are not project data: adding the other user to one's own project is allowed.
NOT_PROJECT_DATA = frozenset({"user"})

# What another project's id may get back: not found or forbidden, or a refusal of the request
# as a whole (no credentials, malformed, method not routed, too big, wrong type) before anything
# is looked up.
REFUSALS = frozenset({400, 401, 403, 404, 405, 413, 415, 422})
# 409s given the same way for an id the caller cannot see as for one that does not exist: a
# sensor's batch names a run or capture session the sensor is not bound to.
UNBOUND = frozenset({"sensor_not_bound", "capture_session_mismatch"})

# Paths the gateway passes on, to reach a tenant's resources through `/api/{tail}`.
GATEWAY_TAILS = (
    "v1/experiments/{experiment}",
    "v1/runs/{run}",
    "v1/runs/{run}/capture-sessions/{capture_session}",
    "v1/sensors/{sensor}",
    "v1/sensors/{sensor}/conversion-profiles/{profile}",
    "v1/webhooks/{webhook}",
    "v1/runs?experiment_id={experiment}",
    "v1/telemetry?sensor_id={sensor}",
)


@dataclass
class Fed:
    """What was swapped into a case: where the other tenant's ids of project data went, and
    the ids."""

    foreign: list[str] = field(default_factory=list)
    foreign_ids: set[str] = field(default_factory=set)


def refused(response: Any, fed: Fed) -> bool:
    """The other tenant's ids were refused; an all-or-nothing batch refuses as a whole (409)
    and names each id it refused, which must be as not found (as an unknown id would be)."""
    if response.status_code in REFUSALS:
        return True
    if response.status_code == 202 and _resent_batch(response):
        return True
    if response.status_code != 409:
        return False
    problem = response.json()
    if problem.get("code") in UNBOUND:
        return True
    items = problem.get("errors") or []
    not_found = {
        str(value)
        for item in items
        if str(item.get("code", "")).endswith("_not_found")
        for value in item.values()
    }
    return fed.foreign_ids <= not_found


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def is_negative(case: Any) -> bool:
    """Generated to break the spec somewhere (schemathesis' negative mode)."""
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_negative


def chooser(case: Any) -> random.Random:
    key = repr((case.operation.label, case.path_parameters, case.query, case.body))
    return random.Random(hashlib.sha256(key.encode()).digest())


def _resent_batch(response: Any) -> bool:
    """The ingest acknowledges a batch id its sensor sent before as it did the first time,
    before reading the rest of the body: nothing is stored, nothing named in it is looked up."""
    body = response.json()
    return body.get("duplicate") is True and body.get("run_id") is None


class Feeder:
    def __init__(self, me: Tenant, other: Tenant) -> None:
        self.me, self.other = me, other

    def feed(self, case: Any) -> Fed:
        """Swaps ids into the case in place; only values that already are UUIDs, so a case
        generated to be invalid stays invalid in the same way."""
        fed, pick = Fed(), chooser(case)
        containers = [
            ("path", case.path_parameters),
            ("query", case.query),
            ("body", case.body if isinstance(case.body, dict) else None),
        ]
        for where, values in containers:
            for name in list(values or {}):
                kind = KINDS.get(name)
                if kind is not None:
                    values[name] = self._swap(values[name], kind, pick, fed, f"{where}.{name}")
        if case.operation.path == "/api/{tail}" and pick.random() < 0.6:
            case.path_parameters["tail"] = self._tail(pick, fed)
        if not is_negative(case):
            self._valid_state(case, pick)
        return fed

    def feed_sequence(self, case: Any) -> None:
        """For a call of a sequence, whose other ids come from earlier answers: the fuzzer's
        project in every project_id generated as a UUID, the other tenant's user in every
        user_id (one that may join the project)."""
        for values in (case.query, case.body if isinstance(case.body, dict) else None):
            if values and _is_uuid(values.get("project_id")):
                values["project_id"] = self.me.ids["project"]
            if values and _is_uuid(values.get("user_id")):
                values["user_id"] = self.other.ids["user"]
            if values and case.operation.path.endswith("/members") and "username" in values:
                values["username"] = self.other.username
        if not is_negative(case):
            self._valid_state(case, chooser(case))

    @staticmethod
    def _valid_state(case: Any, pick: random.Random) -> None:
        """A valid request stays valid in what the spec cannot say: no made-up cursor (opaque,
        only ever one the API returned), an Idempotency-Key of its own (a key used with
        another body is 422 by design), and a webhook target the service can check without
        a DNS lookup (tests reach no name server)."""
        if case.query:
            case.query.pop("cursor", None)
        if case.headers and "Idempotency-Key" in case.headers:
            case.headers["Idempotency-Key"] = str(uuid.UUID(int=pick.getrandbits(128)))
        if isinstance(case.body, dict) and isinstance(case.body.get("target_url"), str):
            case.body["target_url"] = WEBHOOK_TARGET

    def _swap(self, value: Any, kind: str, pick: random.Random, fed: Fed, label: str) -> Any:
        if isinstance(value, list):
            return [self._swap(item, kind, pick, fed, label) for item in value]
        if not _is_uuid(value):
            return value
        roll = pick.random()
        if roll < 0.2:
            return value
        if roll < 0.7:
            return self.me.ids[kind]
        if kind not in NOT_PROJECT_DATA:
            fed.foreign.append(label)
            fed.foreign_ids.add(self.other.ids[kind])
        return self.other.ids[kind]

    def _tail(self, pick: random.Random, fed: Fed) -> str:
        template = pick.choice(GATEWAY_TAILS)
        if pick.random() >= 0.4:
            return template.format(**self.me.ids)
        tail = template.format(**self.other.ids)
        fed.foreign.append(f"path.tail={tail}")
        fed.foreign_ids.update(value for value in self.other.ids.values() if value in tail)
        return tail
