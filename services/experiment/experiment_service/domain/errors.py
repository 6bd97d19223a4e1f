import uuid

from backend_common.errors import DomainError
from backend_common.ratelimit import Decision


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


class RunsInSeveralProjects(DomainError):
    """Runs are compared within one project; these runs belong to several."""


class OverlayTooLarge(DomainError):
    """The overlay would hold more buckets than one answer may; ask for fewer points or runs."""


class ProfileVersionTaken(DomainError):
    """The sensor already has a conversion profile with this version label."""


class ProfileStartTaken(DomainError):
    """Another profile of the sensor becomes valid at that very instant."""


class ProfileNotInFuture(DomainError):
    """A profile is scheduled for a future instant; publish it to make it valid now."""


class ProfileNotInPast(DomainError):
    """A backfill publishes a profile from a past instant; schedule one for the future."""


class BackfillNotFound(DomainError):
    """No such backfill, or not one of a sensor the caller sees."""


class WebhookNotFound(DomainError):
    """No such webhook subscription."""


class WebhookDeliveryNotFound(DomainError):
    """No such webhook delivery."""


class SensorLimit(DomainError):
    """The project has as many sensors as it may."""


class RunLimit(DomainError):
    """The experiment has as many runs as it may."""


class WebhookFanOutLimit(DomainError):
    """The change would queue more webhook deliveries than one change may; change fewer items
    at once."""


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
    """Nothing was changed: some items (runs, experiments) cannot take the change."""

    def __init__(self, failures: list[tuple[uuid.UUID, DomainError]], *, item: str) -> None:
        super().__init__(f"{len(failures)} of the {item}s cannot take the change; nothing changed.")
        self.failures = failures
        self.item = item


class PingRateLimited(DomainError):
    """Too many test pings of this subscription; wait before the next."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"Too many pings of this subscription; retry in {decision.retry_after} s.")
        self.decision = decision


class ArtifactNotFound(DomainError):
    """No such artifact."""


class ArtifactTooLarge(DomainError):
    """The file is larger than an artifact may be."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"An artifact may hold at most {limit} bytes.")
        self.limit = limit


class ArtifactQuotaExceeded(DomainError):
    """The project's artifacts would take more storage than its quota."""

    def __init__(self, quota: int, used: int) -> None:
        super().__init__(
            f"The project's artifacts may take {quota} bytes in all; {used} are taken. Delete"
            " some first."
        )


class StorageFull(DomainError):
    """The artifact storage has no room left."""


class StorageUnavailable(DomainError):
    """The artifact storage cannot be reached or failed; try again later."""


class UploadKeyReused(DomainError):
    """This Idempotency-Key was used for a different upload; use a new key."""


# --- run metrics -------------------------------------------------------------------------------


class MetricNotFound(DomainError):
    """The run has no metric of that name."""


class TooManyMetricPoints(DomainError):
    """The range holds too many points to draw from them; narrow it (or leave out the time
    range: a step range is drawn from the tiles kept on write)."""


# --- background jobs ---------------------------------------------------------------------------


class NotAnOperator(DomainError):
    """Only the service's operators see its background jobs (EXPERIMENT_OPERATORS), with their
    own token or an API key without a project or role limit."""


class JobNotFound(DomainError):
    """No background job has that name."""


class RetentionOutOfOrder(DomainError):
    """Raw readings cannot be kept longer than their per-minute rollup."""


class ParamValueChanged(DomainError):
    """A param keeps the value it was first logged with (MLflow's rule, for its door)."""
