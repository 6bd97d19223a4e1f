"""What the ingest error journal keeps of a refused batch (the API journals each refusal it
answers, but for a full spool: that is the service's failure, not the sensor's)."""

from dataclasses import dataclass
from typing import Any

from backend_common.batches import BatchInvalid


@dataclass(frozen=True)
class Rejection:
    """What the journal keeps of a refused batch: how it was answered, and what it held."""

    status: int
    code: str
    detail: str
    readings: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] | None = None
    batch_id: str | None = None

    @classmethod
    def of(
        cls,
        *,
        status: int,
        code: str,
        detail: str,
        errors: list[dict[str, Any]] | None,
        document: object,
        cause: BaseException,
    ) -> "Rejection":
        """The journal entry of a batch (`document`, the decoded JSON body if it got that far;
        else None) refused for `cause` with that answer."""
        readings, batch_id = _counts(document)
        return cls(
            status=status,
            code=code,
            detail=detail,
            readings=readings,
            rejected=cause.rejected if isinstance(cause, BatchInvalid) else 0,
            errors=errors,
            batch_id=batch_id,
        )


def _counts(document: object) -> tuple[int, str | None]:
    """How many readings a refused batch held, and its batch id, as far as it can tell."""
    if not isinstance(document, dict):
        return 0, None
    readings = document.get("readings")
    batch_id = document.get("batch_id")
    return (
        len(readings) if isinstance(readings, list) else 0,
        # Only an id the journal can hold (PostgreSQL text cannot hold NUL).
        batch_id
        if isinstance(batch_id, str) and len(batch_id) <= 200 and "\x00" not in batch_id
        else None,
    )
