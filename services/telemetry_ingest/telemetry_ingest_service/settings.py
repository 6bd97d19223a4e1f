from pydantic_settings import SettingsConfigDict

from backend_common.settings import DatabaseSettings


class TelemetryIngestSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELEMETRY_INGEST_")

    service_name: str = "telemetry_ingest"
    port: int = 8003
    database_name: str = "experiment"
    auth_url: str = "http://127.0.0.1:8001"
