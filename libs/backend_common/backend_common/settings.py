from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend_common.paths import MIGRATIONS_ROOT, OPENAPI_ROOT


class ServiceSettings(BaseSettings):
    """Settings every process has; a service subclass sets its own `env_prefix`."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str
    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    shutdown_timeout: float = Field(default=30.0, gt=0)
    tracing_exporter: Literal["off", "console", "otlp"] = "off"
    otlp_endpoint: str | None = None
    openapi_file: Path | None = None

    def openapi_path(self) -> Path:
        return self.openapi_file or OPENAPI_ROOT / f"{self.service_name}.yaml"


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


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced, for logs."""
    scheme, sep, rest = dsn.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return dsn
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
