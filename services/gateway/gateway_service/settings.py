from pydantic_settings import SettingsConfigDict

from backend_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    service_name: str = "gateway"
    port: int = 8000
    auth_url: str = "http://127.0.0.1:8001"
    experiment_url: str = "http://127.0.0.1:8002"
    telemetry_url: str = "http://127.0.0.1:8003"
