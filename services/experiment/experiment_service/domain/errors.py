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


class SensorNotFound(DomainError):
    """No such sensor."""


class ConversionProfileNotFound(DomainError):
    """No such conversion profile."""


class SensorProjectNotFound(DomainError):
    """The sensor does not belong to that project."""


class SensorProjectLimit(DomainError):
    """The sensor belongs to as many projects as it may."""


class SensorInActiveCapture(DomainError):
    """The sensor is bound to a run with a running capture session; stop the capture first."""


class HomeProjectNotRemovable(DomainError):
    """A sensor cannot leave its home project."""


class SensorAlreadyInProject(DomainError):
    """The sensor already belongs to that project."""


class SensorNotInProject(DomainError):
    """The sensor does not belong to the run's project; add it to the project first."""


class SensorBoundInProject(DomainError):
    """The sensor is bound to runs of that project; unbind it from them first."""


class SensorAlreadyBound(DomainError):
    """The sensor is already bound to this run."""


class SensorNotBound(DomainError):
    """That sensor is not bound to this run."""


class ProfileVersionTaken(DomainError):
    """The sensor already has a conversion profile with this version label."""


class ProfileStartTaken(DomainError):
    """Another profile of the sensor becomes valid at that very instant."""


class ProfileNotInFuture(DomainError):
    """A profile is scheduled for a future instant; publish it to make it valid now."""


class WebhookNotFound(DomainError):
    """No such webhook subscription."""


class WebhookDeliveryNotFound(DomainError):
    """No such webhook delivery."""


class WebhookLimit(DomainError):
    """The project has as many webhook subscriptions as it may."""


class WebhookInactive(DomainError):
    """The webhook subscription is inactive; activate it first."""


class DeliveryInProgress(DomainError):
    """A dispatcher is sending this delivery right now; try again when it is done."""


class WebhookTargetRefused(DomainError):
    """The webhook target is not allowed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"target_url is refused: {reason}.")
        self.errors = [
            {"in": "body", "field": "target_url", "message": reason, "type": "target_refused"}
        ]


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
    SensorNotFound: (404, "sensor_not_found"),
    ConversionProfileNotFound: (404, "conversion_profile_not_found"),
    SensorProjectNotFound: (404, "sensor_project_not_found"),
    SensorProjectLimit: (409, "sensor_project_limit"),
    SensorInActiveCapture: (409, "sensor_in_active_capture"),
    HomeProjectNotRemovable: (409, "home_project_not_removable"),
    SensorAlreadyInProject: (409, "sensor_already_in_project"),
    SensorNotInProject: (409, "sensor_not_in_project"),
    SensorBoundInProject: (409, "sensor_bound_in_project"),
    SensorAlreadyBound: (409, "sensor_already_bound"),
    SensorNotBound: (404, "sensor_not_bound"),
    ProfileVersionTaken: (409, "profile_version_taken"),
    ProfileStartTaken: (409, "profile_start_taken"),
    ProfileNotInFuture: (422, "valid_from_not_in_future"),
    WebhookNotFound: (404, "webhook_not_found"),
    WebhookDeliveryNotFound: (404, "webhook_delivery_not_found"),
    WebhookLimit: (409, "webhook_limit"),
    WebhookInactive: (409, "webhook_inactive"),
    DeliveryInProgress: (409, "delivery_in_progress"),
    WebhookTargetRefused: (422, "webhook_target_refused"),
}
