from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from backend_common.settings import DatabaseSettings

# Proxies whose X-Forwarded-For is believed: by default the gateway on this machine.
LOOPBACK = [ip_network("127.0.0.0/8"), ip_network("::1/128")]


class AuthSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_")

    service_name: str = "auth"
    port: int = 8001
    metrics_port: int | None = 9001
    database_name: str = "auth"

    # Signing keys: one PKCS8 PEM file per key, named <kid>.pem. The active one signs; all verify.
    jwt_keys_dir: Path
    jwt_active_kid: str | None = None  # default: the last file name in sorted order
    jwt_issuer: str = "etp-auth"
    jwt_audience: str = "etp"
    access_token_ttl: int = Field(default=15 * 60, gt=0)
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, gt=0)

    registration_open: bool = True
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    # Password checks (logins) and new-password hashes (register, reset, change) run on pools of
    # their own, so a flood of one cannot starve the other; past `bcrypt_queue` waiting, 503.
    bcrypt_threads: int = Field(default=2, ge=1)
    bcrypt_hash_threads: int = Field(default=1, ge=1)
    bcrypt_queue: int = Field(default=16, ge=0)
    password_reset_ttl: int = Field(default=3600, gt=0)

    # Credential routes (docs/security.md): attempts per client address, per second and at once,
    # and login attempts per login name from addresses it has not logged in from lately.
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(default_factory=lambda: LOOPBACK)
    credential_rate_per_address: float = Field(default=0.2, gt=0)
    credential_burst_per_address: int = Field(default=20, ge=1)
    login_rate_per_username: float = Field(default=0.02, gt=0)
    login_burst_per_username: int = Field(default=10, ge=1)
    known_address_ttl: int = Field(default=30 * 24 * 3600, ge=0)
    reset_rate_per_email: float = Field(default=1 / 600, gt=0)
    reset_burst_per_email: int = Field(default=3, ge=1)
    # Projects one user may own (docs/security.md, quotas); creating one more is 409.
    max_owned_projects: int = Field(default=100, ge=1)
    # API keys (docs/security.md, "API keys"): live keys per user (creating one more is 409); how
    # often a key's last_used_at is written at most; refused keys per client address, per second
    # and at once, before keys from there are not even checked (429).
    max_api_keys_per_user: int = Field(default=50, ge=1)
    api_key_last_used_interval: float = Field(default=60.0, ge=0)
    api_key_failure_rate: float = Field(default=1.0, gt=0)
    api_key_failure_burst: int = Field(default=30, ge=1)
    # Without a mail sender, reset mails (token included) are written here as files; the log only
    # ever says that a reset was asked for.
    reset_mail_dir: Path | None = None

    # Deleted projects are announced to the experiment service (docs/operations.md, "Deleting
    # a project"): at `experiment_url`, with a service token for `internal_audience`; each
    # process delivers unless turned off; a failed try waits backoff_base * 2^(n-1) seconds, at
    # most backoff_cap, and a claimed announcement is the claimer's for lease_seconds.
    experiment_url: str = "http://127.0.0.1:8002"
    internal_audience: str = "etp-internal"
    project_deletion_delivery_enabled: bool = True
    project_deletion_poll_interval: float = Field(default=5.0, gt=0)
    project_deletion_timeout: float = Field(default=10.0, gt=0)
    project_deletion_lease_seconds: float = Field(default=60.0, gt=0)
    project_deletion_backoff_base: float = Field(default=5.0, gt=0)
    project_deletion_backoff_cap: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlasts_a_try(self) -> Self:
        if self.project_deletion_lease_seconds <= self.project_deletion_timeout:
            raise ValueError(
                "project_deletion_lease_seconds must be above project_deletion_timeout"
            )
        return self
