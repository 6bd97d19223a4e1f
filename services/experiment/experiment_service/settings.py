import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from backend_common.settings import (
    AuthClientSettings,
    DatabaseSettings,
    JobSettings,
    LiveStreamSettings,
)


class ExperimentSettings(DatabaseSettings, AuthClientSettings, LiveStreamSettings, JobSettings):
    """The stream_* settings (LiveStreamSettings) are those of live run-metric streams."""

    model_config = SettingsConfigDict(env_prefix="EXPERIMENT_")

    service_name: str = "experiment"
    port: int = 8002
    metrics_port: int | None = 9002
    database_name: str = "experiment"
    # A sensor heard from within this many seconds is online, within the second delayed.
    sensor_online_seconds: float = Field(default=10.0, gt=0)
    sensor_offline_seconds: float = Field(default=60.0, gt=0)

    # Webhooks (docs/webhooks.md). `host` or `host:port` entries, comma-separated in the
    # environment, that a target may resolve to even when they are loopback or private.
    webhook_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    webhook_dispatcher_enabled: bool = True
    webhook_timeout: float = Field(default=15.0, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    # Retry n (n = 1, 2, ...) waits base * 3^(n-1) seconds, at most cap, give or take 25 %.
    webhook_backoff_base: float = Field(default=60.0, gt=0)
    webhook_backoff_cap: float = Field(default=12 * 3600.0, gt=0)
    # How long a claimed delivery is the claimer's; past it another dispatcher may send it again.
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_poll_interval: float = Field(default=5.0, gt=0)
    webhook_concurrency: int = Field(default=32, ge=1, le=1000)
    webhook_target_concurrency: int = Field(default=4, ge=1, le=100)
    webhook_max_subscriptions: int = Field(default=50, ge=1, le=1000)
    # Test pings per subscription: a burst, then one every 1/rate seconds (per process).
    webhook_ping_burst: int = Field(default=5, ge=1, le=1000)
    webhook_ping_rate: float = Field(default=1 / 60, gt=0)
    # Webhook deliveries one batch change (runs:batch-status, runs:bulk-tags) may queue, counted
    # over its events and the subscriptions that want each; past it the change is 422.
    webhook_max_deliveries_per_change: int = Field(default=5000, ge=1)

    # Quotas (docs/security.md): past them a create is 409.
    max_sensors_per_project: int = Field(default=1000, ge=1)  # its own and those shared with it
    max_runs_per_experiment: int = Field(default=10_000, ge=1)

    # Exports (docs/security.md): at most this many at once in the process (each holds a
    # database connection for as long as its client reads; keep it below db_pool_max_size),
    # and per user; how long one may take, and its rows.
    export_connections: int = Field(default=2, gt=0)
    exports_per_user: int = Field(default=2, gt=0)
    export_max_seconds: float = Field(default=300.0, gt=0)
    export_max_rows: int = Field(default=1_000_000, gt=0)

    # Artifacts (docs/artifacts.md): where the files go, how big one may be, how much a project
    # may store in all (past them 413 / 507).
    artifact_storage: Literal["local", "s3"] = "local"
    artifact_dir: Path = Path(".local/artifacts")
    artifact_fsync: bool = True  # a committed artifact's bytes are on disk, not only in cache
    artifact_max_bytes: int = Field(default=5 * 1024**3, ge=0)
    artifact_project_quota_bytes: int = Field(default=100 * 1024**3, ge=0)
    # Seconds between passes over deleted artifacts whose objects are still to be removed.
    artifact_trash_interval: float = Field(default=60.0, gt=0)
    artifact_sweep_on_start: bool = True
    artifact_s3_endpoint_url: str | None = None  # None: AWS itself
    artifact_s3_bucket: str | None = None
    artifact_s3_prefix: str = ""
    artifact_s3_region: str = "us-east-1"
    artifact_s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # Unset: the usual AWS chain (environment, shared files, instance role).
    artifact_s3_access_key_id: str | None = None
    artifact_s3_secret_access_key: SecretStr | None = None
    # Uploads go in parts of this size (S3 takes at least 5 MiB per part but the last).
    artifact_s3_part_size: int = Field(default=8 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    # Another replica may be in the middle of an upload: the start-up sweep removes unfinished
    # uploads and objects without a row only once they are this old.
    artifact_s3_orphan_grace_seconds: float = Field(default=24 * 3600.0, ge=0)
    # Run metrics (docs/metrics.md): points per logged batch; the body of a logged batch (its
    # own limit: 10,000 points with long names weigh more than MAX_BODY_BYTES allows the other
    # routes); how far ahead of the server a point's timestamp may be; points a chart is drawn
    # from directly (a time range, or a step range narrower than the finest tiles).
    metrics_max_points: int = Field(default=10_000, gt=0)
    metrics_max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    metrics_max_future_seconds: float = Field(default=300.0, ge=0)
    metrics_chart_max_scanned: int = Field(default=200_000, gt=0)

    # Background jobs (docs/jobs.md; the runner's own settings are JobSettings'). Users (ids,
    # comma-separated in the environment) who may see the jobs at GET /api/v1/jobs.
    operators: Annotated[tuple[uuid.UUID, ...], NoDecode] = ()
    # How often each job runs, in seconds.
    idempotency_purge_interval: float = Field(default=3600.0, gt=0)
    stale_runs_interval: float = Field(default=300.0, gt=0)
    capture_upkeep_interval: float = Field(default=10.0, gt=0)
    sensor_status_interval: float = Field(default=5.0, gt=0)
    retention_interval: float = Field(default=3600.0, gt=0)
    # Retention, in days: audit rows (over a year by default), webhook events with their
    # deliveries and attempts (once every delivery is over), the jobs' run history.
    audit_retention_days: int = Field(default=400, ge=1)
    webhook_retention_days: int = Field(default=30, ge=1)
    job_history_days: int = Field(default=30, ge=1)
    # A running run without a change, telemetry or metric for this long is failed as stale,
    # unless its project sets its own time (PATCH /api/v1/project-settings/{id}).
    stale_run_after_seconds: int = Field(default=86400, ge=60)

    # Projects deleted in the auth service (docs/operations.md, "Deleting a project"): the
    # audience of the service tokens its announcements carry; how often the job looks for
    # deletions to carry out (a recorded one makes it due at once), the rows it deletes per
    # transaction, and a pause between two chunks to spare a busy database.
    internal_audience: str = "etp-internal"
    project_deletion_interval: float = Field(default=60.0, gt=0)
    project_deletion_chunk: int = Field(default=1000, ge=1, le=100_000)
    project_deletion_pause: float = Field(default=0.0, ge=0, le=60)
    # Seconds between runs of the job that announces finished backfills.
    backfill_announce_interval: float = Field(default=5.0, gt=0)

    # Buckets one run comparison overlay may answer, all its traces together (docs/compare.md).
    compare_max_overlay_buckets: int = Field(default=200_000, ge=2)

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return tuple(item.strip().lower() for item in value if item.strip())
        return value

    @field_validator("operators", mode="before")
    @classmethod
    def _split_operators(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Self:
        if self.sensor_offline_seconds < self.sensor_online_seconds:
            raise ValueError("sensor_offline_seconds must not be below sensor_online_seconds")
        if self.webhook_lease_seconds <= self.webhook_timeout:
            raise ValueError("webhook_lease_seconds must be above webhook_timeout")
        if self.artifact_storage == "s3" and not self.artifact_s3_bucket:
            raise ValueError("artifact_storage s3 needs artifact_s3_bucket")
        return self
