from backend_common.errors import DomainError, ErrorMap


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


ERRORS: ErrorMap = {
    SensorNotFound: (404, "sensor_not_found"),
    RunNotFound: (404, "run_not_found"),
    CaptureSessionNotFound: (404, "capture_session_not_found"),
    RawValuesHidden: (403, "raw_values_hidden"),
    TooManyBuckets: (422, "too_many_buckets"),
    TooManyPoints: (422, "too_many_points"),
    TooManyReadings: (422, "too_many_readings"),
    NoRange: (422, "no_range"),
}
