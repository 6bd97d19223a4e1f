from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from backend_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    service_name: str = "gateway"
    port: int = 8000
    event_loop: Literal["asyncio", "uvloop"] = "uvloop"
    auth_url: str = "http://127.0.0.1:8001"
    experiment_url: str = "http://127.0.0.1:8002"
    telemetry_url: str = "http://127.0.0.1:8003"
    upstream_connect_timeout: float = Field(default=5.0, gt=0)
    upstream_read_timeout: float = Field(default=60.0, gt=0)  # longer than SSE keep-alives

    # Browser sessions.
    cookie_secure: bool = True  # false only for plain-http local development
    refresh_cookie_max_age: int = Field(default=30 * 24 * 3600, gt=0)
    allowed_origins: list[str] = []  # besides the gateway's own origin
    static_dir: Path | None = None  # the SPA's files, index.html as the fallback

    # Rate limits: tokens a second and burst.
    login_rate_per_address: float = Field(default=0.2, gt=0)
    login_burst_per_address: int = Field(default=10, ge=1)
    login_rate_per_username: float = Field(default=0.1, gt=0)
    login_burst_per_username: int = Field(default=5, ge=1)
    api_rate_per_session: float = Field(default=50.0, gt=0)
    api_burst_per_session: int = Field(default=200, ge=1)
