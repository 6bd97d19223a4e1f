from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from backend_common.paths import OPENAPI_ROOT
from backend_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    service_name: str = "gateway"
    port: int = 8000
    metrics_port: int | None = 9000
    event_loop: Literal["asyncio", "uvloop"] = "uvloop"
    auth_url: str = "http://127.0.0.1:8001"
    experiment_url: str = "http://127.0.0.1:8002"
    telemetry_url: str = "http://127.0.0.1:8003"
    upstream_connect_timeout: float = Field(default=5.0, gt=0)
    upstream_read_timeout: float = Field(default=60.0, gt=0)  # longer than SSE keep-alives
    # Connections in use per service (each request in flight, a live stream as long as it
    # runs, holds one); past it a request waits up to upstream_queue_timeout, then 503.
    upstream_max_connections: int = Field(default=512, ge=1)
    upstream_queue_timeout: float = Field(default=5.0, gt=0)
    # Seconds the gateway waits for more of a request's body; past them 408.
    client_body_timeout: float = Field(default=30.0, gt=0)

    # Browser sessions.
    cookie_secure: bool = True  # false only for plain-http local development
    refresh_cookie_max_age: int = Field(default=30 * 24 * 3600, gt=0)
    # The origin browsers reach the gateway at (what its pages send as Origin); unset: the
    # origin of `make run`, http(s)://127.0.0.1:<port>.
    public_origin: str | None = None
    allowed_origins: list[str] = []  # besides public_origin
    static_dir: Path | None = None  # the SPA's files, index.html as the fallback
    # What GET /openapi.yaml answers: the public API through the gateway (default
    # openapi/public.yaml, built by `make spec`); gateway.yaml stays the gateway's own.
    public_openapi_file: Path | None = None

    # Rate limits: tokens a second and burst.
    login_rate_per_address: float = Field(default=0.2, gt=0)
    login_burst_per_address: int = Field(default=10, ge=1)
    login_rate_per_username: float = Field(default=0.1, gt=0)
    login_burst_per_username: int = Field(default=5, ge=1)
    api_rate_per_session: float = Field(default=50.0, gt=0)
    api_burst_per_session: int = Field(default=200, ge=1)

    @field_validator("public_origin")
    @classmethod
    def _an_origin(cls, value: str | None) -> str | None:
        return None if value is None else normalized_origin(value)

    def published_openapi_path(self) -> Path:
        return self.public_openapi_file or OPENAPI_ROOT / "public.yaml"

    def own_origin(self) -> str:
        if self.public_origin is not None:
            return self.public_origin
        scheme = "https" if self.tls_cert_file is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized_origin(value: str) -> str:
    """`scheme://host[:port]` as a browser sends it in Origin: lower case, no default port."""
    parts = urlsplit(value.strip().rstrip("/"))
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"not an origin (scheme://host[:port]): {value!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"
