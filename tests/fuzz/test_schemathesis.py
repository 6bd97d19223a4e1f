"""schemathesis against each service's own spec, on the real processes and PostgreSQL, one
operation at a time: no 5xx, no answer the spec does not describe (status, content type, body
schema, headers), and no other project's data reachable (see crossing.py). The budget and seed
are in fuzzer.py."""

import hypothesis

from tests.fuzz.fuzzer import load

auth = load("auth")
experiment = load("experiment")
telemetry_ingest = load("telemetry_ingest")
gateway = load("gateway")

# The fixtures hold the tenants for all the examples of an operation, on purpose.
_SETTINGS = hypothesis.settings(
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)


@auth.parametrize()
@_SETTINGS
def test_auth(case, fuzzer):
    fuzzer.run("auth", case)


@experiment.parametrize()
@_SETTINGS
def test_experiment(case, fuzzer):
    fuzzer.run("experiment", case)


@telemetry_ingest.parametrize()
@_SETTINGS
def test_telemetry_ingest(case, fuzzer):
    fuzzer.run("telemetry_ingest", case)


@gateway.parametrize()
@_SETTINGS
def test_gateway(case, fuzzer):
    fuzzer.run("gateway", case)
