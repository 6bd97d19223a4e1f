"""Call sequences that follow the links schemathesis infers between operations (an id in one
answer is a parameter of the next call; `Location` headers): what is created can be read,
changed and deleted, and what is deleted is gone, with the same checks as one operation at a
time. Each sequence is a new user's, with a project of its own that goes in every `project_id`,
so sequences start from real creations.
"""

import warnings
from typing import Any

import hypothesis
from hypothesis.errors import FlakyStrategyDefinition

from tests.fuzz.fuzzer import EXAMPLES, STATEFUL_STEPS, Fuzzer, load
from tests.fuzz.tenants import Tenant

SERVICES = {"auth": load("auth", stateful=True), "experiment": load("experiment", stateful=True)}


def _run(service: str, fuzzer: Fuzzer) -> None:
    class Sequences(SERVICES[service].as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Each sequence from the same start, so replaying one gets the same answers.
            fuzzer.act_as(Tenant.sign_up(fuzzer.urls, "sequence"))

        def before_call(self, case: Any) -> None:
            fuzzer.feeder.feed_sequence(case)
            fuzzer.skip_overlong(case, fuzzer.urls[service])

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": fuzzer.urls[service], **fuzzer.credentials(service, case)}

    fuzzer.wrote = True
    try:
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
    except FlakyStrategyDefinition as stopped:
        # Which links a step may follow depends on the answers so far, and a live service's
        # answers differ between two runs of a sequence (new ids, quotas met): past a few dozen
        # sequences Hypothesis may find it cannot replay one. Failures found are raised above.
        warnings.warn(f"{service} sequences stopped early: {stopped}", stacklevel=1)


def test_auth_sequences(fuzzer):
    _run("auth", fuzzer)


def test_experiment_sequences(fuzzer):
    _run("experiment", fuzzer)
