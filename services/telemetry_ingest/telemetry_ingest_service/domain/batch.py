"""A batch of readings as a sensor sends it, checked all at once.

Readings are checked in one plain loop into parallel lists, with no object per reading: a batch
of thousands of readings costs a few microseconds each (every reading of every sensor passes
here, so this is the service's hottest path). A batch is all or nothing: every bad reading is
reported by index and field (backend_common.batches.BatchErrors), and nothing is kept.
"""

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backend_common.batches import (
    BatchErrors,
    BatchInvalid,
    Limits,
    client_batch_id,
    envelope,
    instant,
    items,
)

MAX_SIGNAL_LENGTH = 64
# The channel of a reading whose meta names none.
DEFAULT_SIGNAL = "value"
# jsonb is written with orjson, which stops at 254 levels; PostgreSQL cannot store NUL in jsonb.
MAX_META_DEPTH = 32

_ENVELOPE_FIELDS = frozenset(
    {"sensor_id", "run_id", "capture_session_id", "batch_id", "meta", "readings"}
)
_READING_FIELDS = frozenset({"timestamp", "raw_value", "meta"})


@dataclass
class Batch:
    sensor_id: uuid.UUID
    run_id: uuid.UUID | None
    capture_session_id: uuid.UUID | None
    client_batch_id: str | None
    received_at: datetime
    timestamps: list[datetime]
    raw_values: list[float]
    metas: list[dict[str, Any] | None]
    # Identifies this acknowledgement across retries of the store and the spool's replay.
    ingest_key: uuid.UUID = field(default_factory=uuid.uuid4)

    def __len__(self) -> int:
        return len(self.timestamps)


def parse_batch(data: object, *, received_at: datetime, limits: Limits) -> Batch:
    """The batch in `data` (decoded JSON), or BatchInvalid listing every problem."""
    errors = BatchErrors("readings", "reading")
    data = envelope(data, _ENVELOPE_FIELDS, errors)
    sensor_id = _uuid(data, "sensor_id", errors, required=True)
    run_id = _uuid(data, "run_id", errors)
    session_id = _uuid(data, "capture_session_id", errors)
    batch_id = client_batch_id(data.get("batch_id"), errors)
    batch_meta = data.get("meta")
    if batch_meta is not None and not _valid_meta(batch_meta, "meta", errors):
        batch_meta = None
    readings = items(data.get("readings"), "readings", errors, most=limits.max_items)
    timestamps, raw_values, metas = _readings(
        readings, batch_meta, received_at + limits.max_future, errors
    )
    errors.check(len(readings))
    assert sensor_id is not None
    return Batch(
        sensor_id=sensor_id,
        run_id=run_id,
        capture_session_id=session_id,
        client_batch_id=batch_id,
        received_at=received_at,
        timestamps=timestamps,
        raw_values=raw_values,
        metas=metas,
    )


def _readings(
    readings: list[Any], batch_meta: dict[str, Any] | None, latest: datetime, errors: BatchErrors
) -> tuple[list[datetime], list[float], list[dict[str, Any] | None]]:
    timestamps: list[datetime] = []
    raw_values: list[float] = []
    metas: list[dict[str, Any] | None] = []
    for index, reading in enumerate(readings):
        if type(reading) is not dict:
            errors.add(f"readings.{index}", "must be an object", "model_type", item=index)
            continue
        valid = True
        if (len(reading) > 3 or reading.keys() - _READING_FIELDS) and errors.unknown(
            reading.keys() - _READING_FIELDS, f"readings.{index}.", item=index
        ):
            valid = False
        timestamp = instant(
            reading.get("timestamp"),
            f"readings.{index}.timestamp",
            errors,
            item=index,
            latest=latest,
        )
        raw: Any = reading.get("raw_value")
        raw_type = type(raw)
        if raw_type is not float and raw_type is not int:
            errors.add(f"readings.{index}.raw_value", "must be a number", "float_type", item=index)
            valid = False
        elif not math.isfinite(raw) or (raw_type is int and abs(raw) > 2**53):
            errors.add(
                f"readings.{index}.raw_value",
                "must be a finite number",
                "finite_number",
                item=index,
            )
            valid = False
        meta = reading.get("meta")
        if meta is not None and not _valid_meta(meta, f"readings.{index}.meta", errors, index):
            valid = False
        if timestamp is None or not valid:
            continue
        timestamps.append(timestamp)
        raw_values.append(float(raw))
        metas.append({**batch_meta, **meta} if batch_meta and meta else meta or batch_meta)
    return timestamps, raw_values, metas


class UndeclaredChannel(BatchInvalid):
    """Readings on channels their sensor does not declare."""

    def __init__(self, errors: BatchErrors, items: int, detail: str) -> None:
        super().__init__(
            errors.listed, rejected=len(errors.bad_items), items=items, noun="readings"
        )
        self.detail = detail
        self.args = (detail,)


def signal_of(meta: dict[str, Any] | None) -> str:
    """A reading's channel, as stored (the `signal` column): meta.signal, else the default."""
    signal = meta.get("signal") if meta else None
    return signal if isinstance(signal, str) else DEFAULT_SIGNAL


def check_channels(batch: Batch, declared: frozenset[str] | None) -> None:
    """Refuses the whole batch (all or nothing, as for any bad reading) when a reading is on a
    channel the sensor does not declare; None: it declares none, so every channel is taken."""
    if declared is None:
        return
    errors = BatchErrors("readings", "reading")
    undeclared: dict[str, None] = {}
    for index, meta in enumerate(batch.metas):
        signal = signal_of(meta)
        if signal not in declared:
            undeclared[signal] = None
            errors.add(
                f"readings.{index}.meta.signal",
                f"channel {signal!r} is not declared by the sensor",
                "undeclared_channel",
                item=index,
            )
    if undeclared:
        names = ", ".join(repr(name) for name in sorted(undeclared)[:20])
        raise UndeclaredChannel(
            errors,
            len(batch),
            f"Nothing was stored: {len(errors.bad_items)} of {len(batch)} readings are on"
            f" channels the sensor does not declare: {names}. Declared:"
            f" {', '.join(repr(name) for name in sorted(declared))}.",
        )


def _valid_meta(meta: Any, field: str, errors: BatchErrors, reading: int | None = None) -> bool:
    if type(meta) is not dict:
        errors.add(field, "must be an object", "dict_type", item=reading)
        return False
    for value in meta.values():
        if isinstance(value, dict | list) and not _shallow(value, MAX_META_DEPTH - 1):
            errors.add(
                field,
                f"must not nest deeper than {MAX_META_DEPTH} levels",
                "json_too_deep",
                item=reading,
            )
            return False
    signal = meta.get("signal")
    if signal is not None and not (type(signal) is str and 1 <= len(signal) <= MAX_SIGNAL_LENGTH):
        errors.add(
            f"{field}.signal",
            f"must be a string of 1 to {MAX_SIGNAL_LENGTH} characters",
            "string_type",
            item=reading,
        )
        return False
    return True


def _shallow(value: Any, levels: int) -> bool:
    if levels <= 0:
        return False
    items = value.values() if isinstance(value, dict) else value
    return all(_shallow(item, levels - 1) for item in items if isinstance(item, dict | list))


def _uuid(
    data: dict[str, Any], name: str, errors: BatchErrors, *, required: bool = False
) -> uuid.UUID | None:
    value = data.get(name)
    if value is None:
        if required:
            errors.add(name, "field required", "missing")
        return None
    try:
        if type(value) is not str:
            raise ValueError
        return uuid.UUID(value)
    except ValueError:
        errors.add(name, "must be a UUID", "uuid_parsing")
        return None
