from pydantic_settings import SettingsConfigDict

from backend_common.settings import DatabaseSettings


class AuthSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_")

    service_name: str = "auth"
    port: int = 8001
    database_name: str = "auth"
