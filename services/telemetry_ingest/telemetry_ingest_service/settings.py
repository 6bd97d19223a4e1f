from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from backend_common.settings import (
    AuthClientSettings,
    DatabaseSettings,
    JobSettings,
    LiveStreamSettings,
)


class TelemetryIngestSettings(
    DatabaseSettings, AuthClientSettings, LiveStreamSettings, JobSettings
):
    model_config = SettingsConfigDict(env_prefix="TELEMETRY_INGEST_")

    service_name: str = "telemetry_ingest"
    port: int = 8003
    metrics_port: int | None = 9003
    database_name: str = "experiment"
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # A batch: at most this many readings, none with a timestamp further ahead of the server.
    max_batch_readings: int = Field(default=10_000, gt=0)
    max_future_seconds: float = Field(default=300.0, ge=0)
    # Per sensor token: batches a second, and how many may come at once.
    sensor_rate: float = Field(default=50.0, gt=0)
    sensor_burst: int = Field(default=100, gt=0)
    token_cache_ttl: float = Field(default=30.0, ge=0)
    heartbeat_interval: float = Field(default=1.0, gt=0)
    journal_size: int = Field(default=200, gt=0)  # ingest errors kept per sensor
    # Readings older than this many days are dropped (whole partitions or chunks); 0 keeps all.
    retention_days: int = Field(default=0, ge=0)
    # Seconds between runs of the storage upkeep job (partitions ahead, retention).
    storage_upkeep_interval: float = Field(default=3600.0, gt=0)
    # Seconds between runs of the job that deletes the readings of sensors deleted with their
    # project.
    deleted_sensors_interval: float = Field(default=60.0, gt=0)
    # The conversion backfill job (docs/telemetry.md, "Backfill"): how often it looks for
    # backfills, readings per chunk (one transaction each), chunks converted at once (each lane
    # holds a database connection), and seconds of pause between a lane's chunks.
    backfill_interval: float = Field(default=2.0, gt=0)
    backfill_chunk: int = Field(default=10_000, ge=1, le=1_000_000)
    backfill_lanes: int = Field(default=2, ge=1, le=8)
    backfill_pause: float = Field(default=0.0, ge=0, le=60)
    # Batches acknowledged while PostgreSQL is unreachable wait here (fsynced) to be stored.
    spool_dir: Path = Path(".local/telemetry-spool")
    spool_max_bytes: int = Field(default=1 << 30, gt=0)
    # A store that takes longer counts as "PostgreSQL unreachable": the batch is spooled.
    db_timeout: float = Field(default=5.0, gt=0)
    # The per-minute rollup: queued minutes are recomputed this often, once they are over by
    # the grace; with rollup_reads off, every aggregate is computed from the readings.
    rollup_interval: float = Field(default=5.0, gt=0)
    rollup_grace_seconds: float = Field(default=10.0, ge=0)
    rollup_reads: bool = True
    # GET /telemetry/aligned: readings one request may load, all its sensors together (past
    # it, 422 too_many_readings).
    aligned_max_readings: int = Field(default=500_000, gt=0)
    # Exports: at most this many at once in the process (each holds a database connection
    # while its client reads; keep it below DB_POOL_MAX_SIZE) and per user; each ends after
    # this many seconds and stops at this many rows (saying so in a header).
    export_connections: int = Field(default=2, gt=0)
    exports_per_user: int = Field(default=2, gt=0)
    export_max_seconds: float = Field(default=300.0, gt=0)
    export_max_rows: int = Field(default=1_000_000, gt=0)
