"""Wire models of the experiment API: requests (extra fields refused) and list queries."""

import re
import uuid
from typing import Annotated, Any, Literal, Self

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from backend_common.conversion import Finite, Kind
from backend_common.instants import Instant
from backend_common.pagination import PageQuery
from backend_common.statuses import RunStatus, SensorStatus
from experiment_service.domain.comparison_models import (
    MAX_POINTS,
    MAX_RUNS,
    MIN_RUNS,
    CompareRequest,
    OverlayRequest,
)
from experiment_service.domain.listing import SortOrder, TagsMatch
from experiment_service.domain.models import ExperimentStatus
from experiment_service.domain.webhooks.policy import ALL_EVENTS, EVENT_TYPES, DeliveryStatus

Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.:/+\-]+$")]
Tags = Annotated[list[Tag], Field(max_length=50)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(max_length=10000)]
GitSha = Annotated[str, Field(pattern=r"^[0-9a-f]{7,40}$")]
JsonObject = dict[str, Any]
RunIds = Annotated[list[uuid.UUID], Field(min_length=1, max_length=500)]
ExperimentIds = Annotated[list[uuid.UUID], Field(min_length=1, max_length=500)]


def _json_integer(value: Any) -> Any:
    """What the spec's `integer` takes: lax int would also take `true` and `"60"`."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Patch(Input):
    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent (an explicit null is a change too)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class ExperimentCreate(Input):
    project_id: uuid.UUID
    name: Name
    description: LongText = ""
    tags: Tags = []
    experiment_type: Annotated[str, Field(max_length=100)] | None = None
    metadata: JsonObject = {}


class ExperimentUpdate(Patch):
    name: Name | None = None
    description: LongText | None = None
    tags: Tags | None = None
    experiment_type: Annotated[str, Field(max_length=100)] | None = None
    metadata: JsonObject | None = None
    status: ExperimentStatus | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        for name in ("name", "description", "tags", "metadata", "status"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RunCreate(Input):
    name: Name
    params: JsonObject = {}
    git_sha: GitSha | None = None
    env: JsonObject = {}
    tags: Tags = []
    notes: LongText = ""
    metadata: JsonObject = {}


class RunUpdate(Patch):
    name: Name | None = None
    params: JsonObject | None = None
    git_sha: GitSha | None = None
    env: JsonObject | None = None
    tags: Tags | None = None
    notes: LongText | None = None
    metadata: JsonObject | None = None
    status: RunStatus | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        for name in ("name", "params", "env", "tags", "notes", "metadata", "status"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ParamsMerge(Input):
    """Params merged into a run's: a key given replaces its value, the others stay."""

    params: Annotated[JsonObject, Field(min_length=1)]


class BatchStatusIn(Input):
    run_ids: RunIds
    status: RunStatus


class _TagChange(Input):
    add: Tags = []
    remove: Tags = []
    set: Tags | None = None

    @model_validator(mode="after")
    def _one_kind_of_change(self) -> Self:
        if self.set is not None and (self.add or self.remove):
            raise ValueError("give either set, or add and/or remove")
        if self.set is None and not self.add and not self.remove:
            raise ValueError("give set, add or remove")
        return self


class BulkTagsIn(_TagChange):
    run_ids: RunIds


class ExperimentBatchStatusIn(Input):
    experiment_ids: ExperimentIds
    status: ExperimentStatus


class ExperimentBulkTagsIn(_TagChange):
    experiment_ids: ExperimentIds


MAX_CAPTURE_SECONDS = 30 * 86400


class CaptureStart(Input):
    notes: LongText = ""
    # The session stops itself (succeeded) this many seconds after it started.
    duration_seconds: (
        Annotated[int, BeforeValidator(_json_integer), Field(ge=1, le=MAX_CAPTURE_SECONDS)] | None
    ) = None


class CaptureStop(Input):
    status: Literal["succeeded", "failed"] = "succeeded"
    reason: Annotated[str, Field(min_length=1, max_length=2000)] | None = None

    @model_validator(mode="after")
    def _reason_when_failed(self) -> Self:
        if self.status == "failed" and self.reason is None:
            raise ValueError("a failed capture needs a reason")
        if self.status == "succeeded" and self.reason is not None:
            raise ValueError("a reason is given only for a failed capture")
        return self


class CaptureUpdate(Input):
    notes: LongText


Unit = Annotated[str, Field(min_length=1, max_length=50)]
VersionLabel = Annotated[str, Field(min_length=1, max_length=64)]
MAX_GRACE_SECONDS = 7 * 24 * 3600
GraceSeconds = Annotated[int, BeforeValidator(_json_integer), Field(ge=0, le=MAX_GRACE_SECONDS)]


class ProfileCreate(Input):
    """The payload is validated against its kind by `conversion.parse` (see api.sensors)."""

    version: VersionLabel
    kind: Kind
    payload: JsonObject
    description: LongText = ""


MAX_PREVIEW_VALUES = 1000


class ProfilePreview(Input):
    """A profile tried on sample raw values before it is created (payload checked by kind)."""

    kind: Kind
    payload: JsonObject
    raw_values: Annotated[list[Finite], Field(min_length=1, max_length=MAX_PREVIEW_VALUES)]


MAX_CHANNELS = 32
ChannelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:/+\-]{1,64}$")]


class ChannelIn(Input):
    """A channel a sensor declares: the `meta.signal` its readings carry, and its unit."""

    name: ChannelName
    unit: Unit | None = None


def _distinct_channels(channels: list[ChannelIn]) -> list[ChannelIn]:
    names = [channel.name for channel in channels]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"channel names must be distinct: {', '.join(repeated)} repeated")
    return channels


Channels = Annotated[
    list[ChannelIn], Field(max_length=MAX_CHANNELS), AfterValidator(_distinct_channels)
]


class SensorCreate(Input):
    project_id: uuid.UUID
    name: Name
    type: Annotated[str, Field(min_length=1, max_length=100)]
    input_unit: Unit
    display_unit: Unit
    description: LongText = ""
    channels: Channels = []
    conversion_profile: ProfileCreate | None = None


class SensorUpdate(Patch):
    name: Name | None = None
    type: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    input_unit: Unit | None = None
    display_unit: Unit | None = None
    description: LongText | None = None
    channels: Channels | None = None

    @model_validator(mode="after")
    def _no_null(self) -> Self:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TokenRotation(Input):
    grace_seconds: GraceSeconds = 0


class SensorProjectAdd(Input):
    project_id: uuid.UUID


class ProfileSchedule(Input):
    valid_from: Instant


class SensorBind(Input):
    sensor_id: uuid.UUID


class SensorListQuery(PageQuery):
    project_id: uuid.UUID
    type: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default=[], max_length=20
    )
    status: list[SensorStatus] = Field(default=[], max_length=4)
    q: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    sort: SortOrder = SortOrder.CREATED_AT_DESC


class NoFields(Input):
    """The body of an action that takes no parameters: none, or `{}`."""


class PublishQuery(BaseModel):
    """`backfill=true` publishes from a past `valid_from` and recomputes its readings."""

    model_config = ConfigDict(extra="forbid")

    backfill: bool = False


class NoQuery(BaseModel):
    """A route that takes no query parameters (unknown ones are refused)."""

    model_config = ConfigDict(extra="forbid")


class _Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] = Field(default=[], max_length=50)
    tags_match: TagsMatch = TagsMatch.ANY
    created_after: Instant | None = None
    created_before: Instant | None = None
    q: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    sort: SortOrder = SortOrder.CREATED_AT_DESC


class ExperimentFilters(_Filters):
    project_id: uuid.UUID
    status: list[ExperimentStatus] = Field(default=[], max_length=5)


class RunFilters(_Filters):
    # A SortOrder, or a sort on a param or metric (api.run_queries reads it).
    sort: Annotated[str, Field(min_length=1, max_length=300)] = SortOrder.CREATED_AT_DESC.value  # type: ignore[assignment]
    project_id: uuid.UUID | None = None
    experiment_id: uuid.UUID | None = None
    status: list[RunStatus] = Field(default=[], max_length=5)
    git_sha: Annotated[str, Field(pattern=r"^[0-9a-f]{1,40}$")] | None = None

    @model_validator(mode="after")
    def _scoped(self) -> Self:
        if self.project_id is None and self.experiment_id is None:
            raise ValueError("give project_id or experiment_id")
        return self


class ExperimentListQuery(ExperimentFilters, PageQuery):
    pass


class RunListQuery(RunFilters, PageQuery):
    pass


class ExperimentExportQuery(ExperimentFilters):
    format: Literal["csv", "json"] = "json"


class RunExportQuery(RunFilters):
    format: Literal["csv", "json"] = "json"


MAX_STALE_SECONDS = 366 * 86400
MAX_RETENTION_DAYS = 36600


StaleSeconds = Annotated[int, BeforeValidator(_json_integer), Field(ge=60, le=MAX_STALE_SECONDS)]
RetentionDays = Annotated[int, BeforeValidator(_json_integer), Field(ge=1, le=MAX_RETENTION_DAYS)]


class ProjectSettingsUpdate(Patch):
    """null puts a setting back to the service's default."""

    stale_run_after_seconds: StaleSeconds | None = None
    telemetry_raw_retention_days: RetentionDays | None = None
    telemetry_rollup_retention_days: RetentionDays | None = None


class ProjectDeletionIn(Input):
    """The auth service's announcement that it deleted a project (an internal route)."""

    event_id: uuid.UUID
    project_id: uuid.UUID
    deleted_at: Instant


class AuditQuery(PageQuery):
    project_id: uuid.UUID
    entity_type: (
        Literal[
            "experiment",
            "run",
            "capture_session",
            "sensor",
            "conversion_profile",
            "webhook",
            "artifact",
            "project_settings",
        ]
        | None
    ) = None
    entity_id: uuid.UUID | None = None
    action: Annotated[str, Field(max_length=64)] | None = None
    actor_id: uuid.UUID | None = None
    since: Instant | None = None
    until: Instant | None = None


LIST_REPEATED = ("status", "tags")
SENSOR_LIST_REPEATED = ("status", "type")


def _subscribable(name: str) -> str:
    if name != ALL_EVENTS and name not in EVENT_TYPES:
        known = ", ".join(EVENT_TYPES)
        raise ValueError(f"unknown event type; give {ALL_EVENTS!r} or some of: {known}")
    return name


EventTypeName = Annotated[str, Field(max_length=64), AfterValidator(_subscribable)]
EventTypes = Annotated[list[EventTypeName], Field(min_length=1, max_length=50)]
TargetUrl = Annotated[str, Field(min_length=1, max_length=2000)]
WebhookDescription = Annotated[str, Field(max_length=2000)]


def _normalised_event_types(event_types: list[str]) -> list[str]:
    """Without repeats; `*` covers everything else."""
    return [ALL_EVENTS] if ALL_EVENTS in event_types else list(dict.fromkeys(event_types))


class WebhookCreate(Input):
    project_id: uuid.UUID
    target_url: TargetUrl
    event_types: EventTypes
    description: WebhookDescription = ""
    active: StrictBool = True

    @model_validator(mode="after")
    def _normalise(self) -> Self:
        self.event_types = _normalised_event_types(self.event_types)
        return self


class WebhookUpdate(Patch):
    target_url: TargetUrl | None = None
    event_types: EventTypes | None = None
    description: WebhookDescription | None = None
    active: StrictBool | None = None

    @model_validator(mode="after")
    def _no_null(self) -> Self:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if self.event_types is not None:
            self.event_types = _normalised_event_types(self.event_types)
        return self


class SecretRotation(Input):
    # The previous secret keeps signing (beside the new one) this long: receivers switch over.
    grace_seconds: GraceSeconds = 24 * 3600


class WebhookListQuery(PageQuery):
    project_id: uuid.UUID


class DeliveryListQuery(PageQuery):
    status: list[DeliveryStatus] = Field(default=[], max_length=5)
    event_type: Annotated[str, Field(min_length=1, max_length=64)] | None = None


DELIVERY_LIST_REPEATED = ("status",)


# --- Artifacts ---------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Within what a request line may hold (8 KiB in all, URL-encoded).
MAX_ARTIFACT_METADATA = 4096


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _metadata(value: Any) -> Any:
    """The `metadata` query parameter: a JSON object as text."""
    if isinstance(value, str):
        if len(value) > MAX_ARTIFACT_METADATA:
            raise ValueError(f"must be at most {MAX_ARTIFACT_METADATA} characters")
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError("must be a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    _storable(value, 0)
    return value


def _storable(value: Any, depth: int) -> None:
    # jsonb takes no NUL, and deep nesting fails later in orjson: refuse both here.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    if isinstance(value, dict | list):
        if depth >= 16:
            raise ValueError("must not nest more than 16 levels deep")
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            _storable(key, depth)
            _storable(item, depth + 1)


ArtifactName = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_printable)]
ArtifactType = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:+\-]*$")
]
ArtifactMetadata = Annotated[dict[str, Any], BeforeValidator(_metadata)]


class ArtifactUploadQuery(BaseModel):
    """`name` may be left out of a form upload, whose file part names the file."""

    model_config = ConfigDict(extra="forbid")

    name: ArtifactName | None = None
    type: ArtifactType = "file"
    metadata: ArtifactMetadata = {}


class ArtifactListQuery(PageQuery):
    type: ArtifactType | None = None


Step = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class MetricSeriesQuery(PageQuery):
    """A series' points with steps in [step_from, step_to) and timestamps in [time_from,
    time_to): a page of them, or with `points`, the whole range drawn as at most that many."""

    step_from: Step | None = None
    step_to: Step | None = None
    time_from: Instant | None = None
    time_to: Instant | None = None
    points: Annotated[int, Field(ge=4, le=10_000)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.points is not None and {"limit", "cursor"} & self.model_fields_set:
            raise ValueError("points draws the whole range: leave out limit and cursor")
        steps, times = (self.step_from, self.step_to), (self.time_from, self.time_to)
        if None not in steps and steps[0] >= steps[1]:  # type: ignore[operator]
            raise ValueError("step_to must be above step_from")
        if None not in times and times[0] >= times[1]:  # type: ignore[operator]
            raise ValueError("time_to must be after time_from")
        return self


# --- Run comparison ----------------------------------------------------------------------------


def _split_ids(value: Any) -> Any:
    """`ids=a&ids=b` and `ids=a,b` alike."""
    if isinstance(value, list):
        return [part.strip() for item in value for part in str(item).split(",")]
    return value


def _distinct(ids: list[uuid.UUID]) -> list[uuid.UUID]:
    repeated = sorted({str(run_id) for run_id in ids if ids.count(run_id) > 1})
    if repeated:
        raise ValueError(f"each run once; repeated: {', '.join(repeated)}")
    return ids


ComparedIds = Annotated[
    list[uuid.UUID],
    BeforeValidator(_split_ids),
    Field(min_length=MIN_RUNS, max_length=MAX_RUNS),
    AfterValidator(_distinct),
]
Signal = Annotated[str, Field(min_length=1, max_length=200)]


class CompareQuery(NoQuery):
    ids: ComparedIds
    baseline: uuid.UUID | None = None
    only_diff: bool = False
    format: Literal["json", "csv"] = "json"

    @field_validator("baseline")
    @classmethod
    def _baseline_compared(cls, baseline: uuid.UUID | None, info: ValidationInfo) -> Any:
        # Checked only against valid ids (else `ids` is refused on its own).
        if baseline is not None and baseline not in info.data.get("ids", [baseline]):
            raise ValueError("baseline must be one of ids")
        return baseline

    def request(self) -> CompareRequest:
        """The first run is the baseline unless one is given."""
        baseline = self.ids[0] if self.baseline is None else self.baseline
        return CompareRequest(tuple(self.ids), baseline, self.only_diff)


class OverlayQuery(NoQuery):
    ids: ComparedIds
    sensor_id: uuid.UUID
    signal: Signal = "value"
    points: Annotated[int, Field(ge=2, le=MAX_POINTS)] = 1000

    def request(self) -> OverlayRequest:
        return OverlayRequest(tuple(self.ids), self.sensor_id, self.signal, self.points)


COMPARE_REPEATED = ("ids",)
