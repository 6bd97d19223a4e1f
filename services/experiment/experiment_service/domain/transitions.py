"""The status machines, as data: what may follow what."""

from backend_common.statuses import CaptureStatus, RunStatus
from experiment_service.domain.models import ExperimentStatus, ProfileStatus

EXPERIMENT_TRANSITIONS: dict[ExperimentStatus, frozenset[ExperimentStatus]] = {
    ExperimentStatus.DRAFT: frozenset({ExperimentStatus.RUNNING, ExperimentStatus.ARCHIVED}),
    ExperimentStatus.RUNNING: frozenset(
        {ExperimentStatus.FINISHED, ExperimentStatus.FAILED, ExperimentStatus.ARCHIVED}
    ),
    ExperimentStatus.FINISHED: frozenset({ExperimentStatus.ARCHIVED}),
    ExperimentStatus.FAILED: frozenset({ExperimentStatus.ARCHIVED}),
    ExperimentStatus.ARCHIVED: frozenset(),
}

# Statuses an experiment cannot take while one of its runs is running.
EXPERIMENT_NEEDS_IDLE_RUNS = frozenset(
    {ExperimentStatus.FINISHED, ExperimentStatus.FAILED, ExperimentStatus.ARCHIVED}
)

RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.DRAFT: frozenset({RunStatus.RUNNING}),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED}),
    RunStatus.SUCCEEDED: frozenset({RunStatus.ARCHIVED}),
    RunStatus.FAILED: frozenset({RunStatus.ARCHIVED}),
    RunStatus.ARCHIVED: frozenset(),
}

# Statuses a run cannot take while one of its capture sessions is running.
RUN_STATUSES_NEEDING_IDLE_CAPTURE = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.ARCHIVED}
)
RUN_FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED})

CAPTURE_STOP_STATUSES = frozenset({CaptureStatus.SUCCEEDED, CaptureStatus.FAILED})
CAPTURE_DELETABLE = frozenset({CaptureStatus.DRAFT, CaptureStatus.FAILED})

# Conversion profiles: scheduled ones become active, and active ones deprecated, also by time.
PROFILE_TRANSITIONS: dict[ProfileStatus, frozenset[ProfileStatus]] = {
    ProfileStatus.DRAFT: frozenset({ProfileStatus.SCHEDULED, ProfileStatus.ACTIVE}),
    ProfileStatus.SCHEDULED: frozenset({ProfileStatus.ACTIVE}),
    ProfileStatus.ACTIVE: frozenset({ProfileStatus.DEPRECATED}),
    ProfileStatus.DEPRECATED: frozenset(),
}
