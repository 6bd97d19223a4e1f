import re
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend_common.paths import MIGRATIONS_ROOT, OPENAPI_ROOT


class ServiceSettings(BaseSettings):
    """Settings every process has; a service subclass sets its own `env_prefix`."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str
    host: str = "127.0.0.1"
    port: int
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    shutdown_timeout: float = Field(default=30.0, gt=0)
    tracing_exporter: Literal["off", "console", "otlp"] = "off"
    otlp_endpoint: str | None = None
    openapi_file: Path | None = None
    tls_cert_file: Path | None = None  # serve HTTPS with this certificate chain and key
    tls_key_file: Path | None = None
    # uvloop (libuv's loop) is cheaper per socket operation, which pays off in the gateway; the
    # database services measured slower on it under load (bench/gateway.py, docs/performance.md).
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    # Processes serving the same port (SO_REUSEPORT); `worker` is set for each, 0 … workers - 1.
    workers: int = Field(default=1, ge=1, le=64)
    worker: int = Field(default=0, ge=0)
    # Prometheus' GET /metrics on a port of its own (docs/operations.md, "Monitoring"), never
    # the API's: a load balancer in front of the API cannot expose it. None: not served; 0: any
    # free port. Answered to loopback and to metrics_allowed_networks only (the peer address,
    # X-Forwarded-For is not read). Gauges of the process are sampled every
    # metrics_sample_seconds and at each scrape.
    metrics_port: int | None = None
    metrics_host: str | None = None  # default: `host`
    metrics_allowed_networks: list[IPv4Network | IPv6Network] = []
    metrics_sample_seconds: float = Field(default=10.0, gt=0)

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _metrics_off(cls, port: object) -> object:
        """`off` (or empty) in the environment: no /metrics."""
        if isinstance(port, str) and port.strip().lower() in ("", "off", "none", "null"):
            return None
        return port

    @field_validator("port", "metrics_port")
    @classmethod
    def _port_in_range(cls, port: int | None) -> int | None:
        # A validator, not Field(ge=, le=): services redeclare `port` with their own default,
        # which would drop constraints declared on the field here.
        if port is not None and not 0 <= port <= 65535:
            raise ValueError("port must be between 0 and 65535")
        return port

    def openapi_path(self) -> Path:
        """The service's own spec, which its routes are checked against."""
        return self.openapi_file or OPENAPI_ROOT / f"{self.service_name}.yaml"

    def published_openapi_path(self) -> Path:
        """The document `GET /openapi.yaml` answers."""
        return self.openapi_path()


class DatabaseSettings(ServiceSettings):
    """Settings of a service that owns a PostgreSQL database."""

    database_url: SecretStr
    database_name: str
    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=10, ge=1)
    db_command_timeout: float = Field(default=30.0, gt=0)
    apply_migrations: bool = False
    migrations_dir: Path | None = None

    def migrations_path(self) -> Path:
        return self.migrations_dir or MIGRATIONS_ROOT / self.database_name


class LiveStreamSettings(ServiceSettings):
    """Settings of a service that serves live streams (backend_common.live)."""

    # A keep-alive comment this often; a client this many events behind is cut off; at most this
    # many streams per user (per process); at most this many batches replayed for a reconnecting
    # client; an open stream's access (membership, what it may see) is checked again this often
    # (it ends at its token's expiry).
    stream_keepalive_seconds: float = Field(default=15.0, gt=0)
    stream_queue_size: int = Field(default=100, gt=0)
    streams_per_user: int = Field(default=10, gt=0)
    stream_replay_batches: int = Field(default=1000, gt=0)
    stream_recheck_seconds: float = Field(default=5.0, gt=0)


# asyncpg also takes the password (and the client key's) from the query string.
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&#]*")


class AuthClientSettings(ServiceSettings):
    """Settings of a service that verifies access tokens and asks the auth service for roles."""

    auth_url: str = "http://127.0.0.1:8001"
    jwks_url: str | None = None  # default: <auth_url>/.well-known/jwks.json
    # Seconds between refetches of the key set: a key removed from auth stops verifying within it.
    jwks_refresh_interval: float = Field(default=300.0, gt=0)
    jwt_issuer: str = "etp-auth"
    jwt_audience: str = "etp"
    role_cache_ttl: float = Field(default=5.0, ge=0)
    # Seconds an API key's verification (grant or refusal) is kept: a revoked key stops working
    # here within this time.
    api_key_cache_ttl: float = Field(default=5.0, ge=0)

    def jwks_location(self) -> str:
        return self.jwks_url or f"{self.auth_url.rstrip('/')}/.well-known/jwks.json"


def mask_dsn(dsn: str) -> str:
    """The DSN with its passwords replaced, for logs."""
    dsn = _QUERY_PASSWORD.sub(r"\1***", dsn)
    scheme, sep, rest = dsn.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return dsn
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


class JobSettings(ServiceSettings):
    """Settings of a service that runs background jobs (backend_common.jobs, docs/jobs.md)."""

    # Off: this process runs no job (another replica or `python -m <service>.workers` does).
    jobs_enabled: bool = True
    # Seconds between looks for due jobs.
    jobs_poll_interval: float = Field(default=1.0, gt=0)
    # How long a claimed job is the claimer's; renewed while it runs, so a runner that dies
    # gives its job back within this time.
    jobs_lease_seconds: float = Field(default=60.0, gt=0)
    # A run taking longer is cut and counted as failed.
    jobs_timeout_seconds: float = Field(default=900.0, gt=0)
    # A failed job is tried again after this many seconds, doubled with each failure in a row,
    # never later than its next regular run.
    jobs_retry_base_seconds: float = Field(default=10.0, gt=0)
    # Jobs one process runs at once.
    jobs_concurrency: int = Field(default=2, ge=1, le=32)
