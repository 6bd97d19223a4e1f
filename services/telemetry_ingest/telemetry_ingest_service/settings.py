from pydantic_settings import SettingsConfigDict

from backend_common.settings import AuthClientSettings, DatabaseSettings


class TelemetryIngestSettings(DatabaseSettings, AuthClientSettings):
    model_config = SettingsConfigDict(env_prefix="TELEMETRY_INGEST_")

    service_name: str = "telemetry_ingest"
    port: int = 8003
    database_name: str = "experiment"
