"""How the fuzz tests drive schemathesis: its configuration (budget, seed, checks), and the
fuzzer that sends each generated request as the fuzzer's tenant with real ids swapped in
(crossing.py) and checks the answer.

ETP_FUZZ_EXAMPLES sets the examples per operation (a longer run: ETP_FUZZ_EXAMPLES=200),
ETP_FUZZ_SEED the seed (the same seed replays the same requests)."""

import os
import pathlib
from dataclasses import dataclass
from typing import Any

import hypothesis
import requests
import schemathesis

from tests.fuzz.crossing import Feeder, refused
from tests.fuzz.tenants import PASSWORD, Tenant

OPENAPI = pathlib.Path(__file__).parents[2] / "openapi"
EXAMPLES = int(os.environ.get("ETP_FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("ETP_FUZZ_SEED", "1717"))
# Calls in one sequence of the stateful tests.
STATEFUL_STEPS = 8


# Operations whose valid-looking requests may be refused (documented 4xx) by rules JSON Schema
# cannot state; elsewhere a request the spec allows must not get 400 or 422.
RULES_BEYOND_SCHEMA = (
    # A new password has at most 72 bytes in UTF-8 (maxLength counts characters); a reset token
    # is only valid if the service issued it.
    "POST /api/v1/auth/register",
    "POST /api/v1/auth/password",
    "POST /api/v1/auth/password-reset/confirm",
    # One of several query parameters is required; `to` after `from`; a bounded number of steps.
    "GET /api/v1/runs",
    "GET /api/v1/runs/export",
    "GET /api/v1/telemetry",
    "GET /api/v1/telemetry/aggregate",
    "GET /api/v1/telemetry/aligned",
    "GET /api/v1/telemetry/export",
    "GET /api/v1/telemetry/stream",
    # Reading timestamps from 1970 to a few minutes ahead of the service's clock.
    "POST /api/v1/telemetry",
    # Table points sorted by x; a scheduled profile starts in the future; a sensor's channel
    # names are distinct.
    "POST /api/v1/sensors",
    "PATCH /api/v1/sensors/{sensor_id}",
    "POST /api/v1/sensors/{sensor_id}/conversion-profiles",
    "POST /api/v1/sensors/{sensor_id}/conversion-profiles:preview",
    "POST /api/v1/sensors/{sensor_id}/conversion-profiles/{profile_id}/schedule",
    # With `backfill=true` the body is a past `valid_from`, without it an empty body.
    "POST /api/v1/sensors/{sensor_id}/conversion-profiles/{profile_id}/publish",
    # A key expires in the future, within the caller's projects and roles.
    "POST /api/v1/api-keys",
    # Point timestamps from 1970 to a few minutes ahead; `points` draws the whole range, so it
    # takes no `limit` or `cursor`; an artifact's name comes from the query or the form's file.
    "POST /api/v1/runs/{run_id}/metrics",
    "GET /api/v1/runs/{run_id}/metrics/{name}",
    "POST /api/v1/runs/{run_id}/artifacts",
    # Raw readings are kept no longer than their rollup, which may be the one stored before.
    "PATCH /api/v1/project-settings/{project_id}",
    # The baseline is one of the compared ids.
    "GET /api/v1/runs:compare",
    "GET /api/v1/runs:compare/overlay",
    # MLflow's door needs an API key bound to a project (the fuzzer's tenants send access
    # tokens: 400 INVALID_PARAMETER_VALUE), and MLflow's filter grammar is text.
    "POST /api/2.0/mlflow/experiments/create",
    "GET /api/2.0/mlflow/experiments/get",
    "GET /api/2.0/mlflow/experiments/get-by-name",
    "POST /api/2.0/mlflow/experiments/search",
    "POST /api/2.0/mlflow/experiments/update",
    "POST /api/2.0/mlflow/experiments/delete",
    "POST /api/2.0/mlflow/experiments/restore",
    "POST /api/2.0/mlflow/experiments/set-experiment-tag",
    "POST /api/2.0/mlflow/experiments/delete-experiment-tag",
    "POST /api/2.0/mlflow/runs/create",
    "GET /api/2.0/mlflow/runs/get",
    "POST /api/2.0/mlflow/runs/update",
    "POST /api/2.0/mlflow/runs/delete",
    "POST /api/2.0/mlflow/runs/restore",
    "POST /api/2.0/mlflow/runs/search",
    "POST /api/2.0/mlflow/runs/log-metric",
    "POST /api/2.0/mlflow/runs/log-parameter",
    "POST /api/2.0/mlflow/runs/set-tag",
    "POST /api/2.0/mlflow/runs/delete-tag",
    "POST /api/2.0/mlflow/runs/log-batch",
    "POST /api/2.0/mlflow/runs/log-inputs",
    "POST /api/2.0/mlflow/logged-models/search",
    "GET /api/2.0/mlflow/metrics/get-history",
    "GET /api/2.0/mlflow/metrics/get-history-bulk-interval",
    "PUT /api/2.0/mlflow-artifacts/artifacts/{path}",
    "GET /api/2.0/mlflow-artifacts/artifacts/{path}",
    "GET /api/2.0/mlflow-artifacts/artifacts",
    # The gateway passes any path on: the service behind it decides.
    *(f"{method} /api/{{tail}}" for method in ("GET", "POST", "PUT", "PATCH", "DELETE")),
)
# Fixed paths that a templated path of the same service also matches (`/experiments/export` is
# `/experiments/{experiment_id}` too, and every path is the gateway's SPA route for GET): another
# method there is that route's answer, not 405, and `Allow` lists that route's methods too.
SHADOWED = (
    "GET /api/v1/experiments/export",
    "GET /api/v1/runs/export",
    "POST /auth/login",
    "POST /auth/refresh",
    "POST /auth/logout",
)
# Bodies taken as they come, in any media type (an artifact's bytes): a JSON body that is not a
# string is still a file, not a request the spec refuses.
ANY_BODY = (
    "POST /api/v1/runs/{run_id}/artifacts",
    "PUT /api/2.0/mlflow-artifacts/artifacts/{path}",
)
# aiohttp's HTTP parser refuses a longer request line (or header) itself, in text/plain.
MAX_REQUEST_LINE = 8190


OFF = {"enabled": False}


def _config(stateful: bool) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": 10,
            "generation": {
                "max-examples": EXAMPLES,
                "database": "none",
                # PostgreSQL stores no NUL character: every string field refuses it (422).
                "allow-x00": False,
                # The fuzzer sends the credentials itself (Fuzzer.credentials).
                "with-security-parameters": False,
            },
            "phases": {
                "stateful": {
                    "enabled": stateful,
                    # Links between operations: from `Location` headers, and from ids in answers
                    # that name the parameters of other operations.
                    "inference": {"algorithms": ["location-headers", "dependency-analysis"]},
                }
            },
            "operations": [
                # A live stream never ends: read what comes within a second.
                {"include-name": "GET /api/v1/telemetry/stream", "request-timeout": 1},
                *(
                    {"include-name": name, "checks": {"positive_data_acceptance": OFF}}
                    for name in RULES_BEYOND_SCHEMA
                ),
                *(
                    {"include-name": name, "checks": {"negative_data_rejection": OFF}}
                    for name in ANY_BODY
                ),
                *(
                    {
                        "include-name": name,
                        "checks": {
                            "unsupported_method": OFF,
                            "allow_header_conformance": OFF,
                        },
                    }
                    for name in SHADOWED
                ),
            ],
        }
    )


def load(service: str, *, stateful: bool = False) -> Any:
    """The service's spec as schemathesis' schema, configured for these tests."""
    return schemathesis.openapi.from_path(OPENAPI / f"{service}.yaml", config=_config(stateful))


@dataclass
class Fuzzer:
    urls: dict[str, str]
    me: Tenant
    feeder: Feeder
    cookies: dict[str, str] | None = None
    # An operation other than GET was fuzzed: the fuzzer's tenant may have changed.
    wrote: bool = False

    def credentials(self, service: str, case: Any) -> dict[str, Any]:
        path = case.operation.path
        if service == "telemetry_ingest" and case.operation.method.upper() == "POST":
            return {"headers": self.me.sensor_headers}
        if service == "gateway" and path.startswith("/auth/"):
            return {"cookies": dict(self.session_cookies())}
        return {"headers": self.me.headers}

    def act_as(self, tenant: Tenant) -> None:
        self.me = self.feeder.me = tenant
        self.cookies = None

    def session_cookies(self) -> dict[str, str]:
        """The cookies of a gateway session of the fuzzer's user (logged in once)."""
        if self.cookies is None:
            login = requests.post(
                self.urls["gateway"] + "/auth/login",
                json={"username": self.me.username, "password": PASSWORD},
                timeout=30,
            )
            assert login.status_code == 200, login.text
            self.cookies = {cookie.name: cookie.value for cookie in login.cookies}
        return self.cookies

    def run(self, service: str, case: Any) -> None:
        self.wrote = self.wrote or case.operation.method.upper() != "GET"
        fed = self.feeder.feed(case)
        base_url = self.urls[service]
        self.skip_overlong(case, base_url)
        response = case.call_and_validate(base_url=base_url, **self.credentials(service, case))
        if fed.foreign and str(case.method).upper() == case.operation.method.upper():
            assert refused(response, fed), (
                f"another project's ids in {fed.foreign} got {response.status_code}: "
                f"{case.method} {response.request.url}\n{response.text[:2000]}"
            )

    @staticmethod
    def skip_overlong(case: Any, base_url: str) -> None:
        if _request_line(case, base_url) > MAX_REQUEST_LINE:
            hypothesis.reject()


def _request_line(case: Any, base_url: str) -> int:
    kwargs = case.as_transport_kwargs(base_url=base_url)
    url = requests.Request("GET", kwargs["url"], params=kwargs.get("params")).prepare().url
    return len(url) - len(base_url) + len(str(case.method)) + len(" HTTP/1.1 ")
