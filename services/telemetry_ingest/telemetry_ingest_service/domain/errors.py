"""What the telemetry domain refuses; `api/errors.py` says how each is answered."""

from backend_common.errors import DomainError


class SensorNotFound(DomainError):
    """No such sensor."""


class RunNotFound(DomainError):
    """No such run."""


class CaptureSessionNotFound(DomainError):
    """No such capture session."""


class RawValuesHidden(DomainError):
    """This project shows its viewers physical values only; ask for layer=physical."""


class TooManyBuckets(DomainError):
    """The range holds too many buckets of that width; pick a wider bucket or a shorter range."""


class TooManyPoints(DomainError):
    """The range holds too many steps; pick a longer step or a shorter range."""


class TooManyReadings(DomainError):
    """A sensor has too many readings in the range to align; narrow it or use aggregates."""


class NoRange(DomainError):
    """Give from and to, or a capture session that has started."""


# --- the ingest path -----------------------------------------------------------------------------


class InvalidToken(DomainError):
    """The sensor token is not valid (revoked, rotated or unknown)."""


class TokenCheckUnavailable(DomainError):
    """Cannot check the sensor token now; retry shortly."""


class TokenSensorMismatch(DomainError):
    """The token belongs to another sensor than sensor_id."""


class NotStored(DomainError):
    """The database is unreachable and the spool is full; nothing was stored. Retry later."""


class SensorNotBound(DomainError):
    """The sensor is not bound to that run."""


class CaptureSessionMismatch(DomainError):
    """That capture session does not belong to the run (or to a run the sensor is bound to)."""


class RunArchived(DomainError):
    """The run is archived: it takes no more readings."""


class CaptureSessionArchived(DomainError):
    """The capture session is archived: it takes no more readings."""
