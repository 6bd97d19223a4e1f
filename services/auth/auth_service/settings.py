from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from backend_common.settings import DatabaseSettings


class AuthSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_")

    service_name: str = "auth"
    port: int = 8001
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
    bcrypt_threads: int = Field(default=2, ge=1)  # concurrent hashes; the rest wait their turn
    password_reset_ttl: int = Field(default=3600, gt=0)
