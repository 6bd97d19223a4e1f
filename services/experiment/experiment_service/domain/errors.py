from backend_common.errors import DomainError, ErrorMap
from backend_common.rbac import RBAC_ERRORS


class ExperimentNotFound(DomainError):
    """No such experiment."""


class RunNotFound(DomainError):
    """No such run."""


class CaptureSessionNotFound(DomainError):
    """No such capture session."""


class InvalidTransition(DomainError):
    """That status change is not allowed from the current status."""


class ExperimentHasRunningRuns(DomainError):
    """The experiment has running runs; finish them first."""


class ExperimentArchived(DomainError):
    """The experiment is archived: it no longer changes, takes new runs or starts runs."""


class RunArchived(DomainError):
    """The run is archived: it no longer changes."""


class RunHasActiveCapture(DomainError):
    """The run has a running capture session; stop it first."""


class RunNotRunning(DomainError):
    """Capture starts only in a running run."""


class CaptureAlreadyRunning(DomainError):
    """The run already has a running capture session."""


class CaptureNotRunning(DomainError):
    """Only a running capture session can be stopped."""


class CaptureNotDeletable(DomainError):
    """Only draft or failed capture sessions can be deleted."""


class BatchFailed(DomainError):
    """Nothing was changed: some runs cannot take the change."""

    def __init__(self, failures: list[dict[str, str]]) -> None:
        super().__init__(f"{len(failures)} of the runs cannot take the change; nothing changed.")
        self.errors = failures


ERROR_MAP: ErrorMap = {
    **RBAC_ERRORS,
    ExperimentNotFound: (404, "experiment_not_found"),
    RunNotFound: (404, "run_not_found"),
    CaptureSessionNotFound: (404, "capture_session_not_found"),
    InvalidTransition: (409, "invalid_transition"),
    ExperimentHasRunningRuns: (409, "experiment_has_running_runs"),
    ExperimentArchived: (409, "experiment_archived"),
    RunArchived: (409, "run_archived"),
    RunHasActiveCapture: (409, "run_has_active_capture"),
    RunNotRunning: (409, "run_not_running"),
    CaptureAlreadyRunning: (409, "capture_already_running"),
    CaptureNotRunning: (409, "capture_not_running"),
    CaptureNotDeletable: (409, "capture_not_deletable"),
    BatchFailed: (409, "batch_failed"),
}
