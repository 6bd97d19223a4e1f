"""Call sequences that follow the links schemathesis infers between operations (an id in one
answer is a parameter of the next call; `Location` headers): what is created can be read,
changed and deleted, and what is deleted is gone, with the same checks as one operation at a
time. The fuzzer's project goes in every `project_id`, so sequences start from real creations.
"""

from typing import Any

import hypothesis

from tests.fuzz.fuzzer import EXAMPLES, STATEFUL_STEPS, Fuzzer, load

SERVICES = {"auth": load("auth", stateful=True), "experiment": load("experiment", stateful=True)}


def _run(service: str, fuzzer: Fuzzer) -> None:
    class Sequences(SERVICES[service].as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            fuzzer.feeder.feed_sequence(case)
            fuzzer.skip_overlong(case, fuzzer.urls[service])

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": fuzzer.urls[service], **fuzzer.credentials(service, case)}

    fuzzer.wrote = True
    Sequences.run(
        settings=hypothesis.settings(
            max_examples=max(EXAMPLES // 4, 1),
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )


def test_auth_sequences(fuzzer):
    _run("auth", fuzzer)


def test_experiment_sequences(fuzzer):
    _run("experiment", fuzzer)
