"""Raw → physical for a batch: each reading by the profile valid at its own timestamp."""

import bisect
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend_common.conversion import ConversionError, Converter, parse

OK = "ok"
NO_PROFILE = "no_profile"
ERROR = "error"


@dataclass(frozen=True)
class ProfileSpan:
    """A profile and its validity [valid_from, valid_to)."""

    id: uuid.UUID
    converter: Converter
    valid_from: datetime
    valid_to: datetime | None

    def covers(self, instant: datetime) -> bool:
        return self.valid_from <= instant and (self.valid_to is None or instant < self.valid_to)


@dataclass
class Converted:
    physical: list[float | None]
    status: list[str]
    profile_ids: list[uuid.UUID | None]

    def count(self, status: str) -> int:
        return self.status.count(status)


class Converters:
    """Parsed profile payloads by profile id: a payload never changes once created."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._cache: OrderedDict[uuid.UUID, Converter] = OrderedDict()
        self._max_entries = max_entries

    def span(
        self,
        profile_id: uuid.UUID,
        kind: str,
        payload: Any,
        valid_from: datetime,
        valid_to: datetime | None,
    ) -> ProfileSpan:
        converter = self._cache.get(profile_id)
        if converter is None:
            converter = self._cache[profile_id] = parse(kind, payload)
            if len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return ProfileSpan(profile_id, converter, valid_from, valid_to)


def convert_batch(
    timestamps: list[datetime], raw_values: list[float], spans: list[ProfileSpan]
) -> Converted:
    """`spans` are sorted by valid_from and do not overlap."""
    n = len(timestamps)
    if not spans:
        return Converted([None] * n, [NO_PROFILE] * n, [None] * n)
    if len(spans) == 1 and spans[0].covers(min(timestamps)) and spans[0].covers(max(timestamps)):
        return _convert_all(raw_values, spans[0])
    starts = [span.valid_from for span in spans]
    physical: list[float | None] = []
    status: list[str] = []
    profile_ids: list[uuid.UUID | None] = []
    for timestamp, raw in zip(timestamps, raw_values, strict=True):
        index = bisect.bisect_right(starts, timestamp) - 1
        span = spans[index] if index >= 0 else None
        if span is None or not span.covers(timestamp):
            physical.append(None)
            status.append(NO_PROFILE)
            profile_ids.append(None)
            continue
        value, state = _convert_one(span.converter, raw)
        physical.append(value)
        status.append(state)
        profile_ids.append(span.id)
    return Converted(physical, status, profile_ids)


def _convert_all(raw_values: list[float], span: ProfileSpan) -> Converted:
    convert = span.converter.convert
    physical: list[float | None] = []
    status: list[str] = []
    for raw in raw_values:
        try:
            physical.append(convert(raw))
            status.append(OK)
        except ConversionError:
            physical.append(None)
            status.append(ERROR)
    return Converted(physical, status, [span.id] * len(raw_values))


def _convert_one(converter: Converter, raw: float) -> tuple[float | None, str]:
    try:
        return converter.convert(raw), OK
    except ConversionError:
        return None, ERROR
