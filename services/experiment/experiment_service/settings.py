from pydantic_settings import SettingsConfigDict

from backend_common.settings import AuthClientSettings, DatabaseSettings


class ExperimentSettings(DatabaseSettings, AuthClientSettings):
    model_config = SettingsConfigDict(env_prefix="EXPERIMENT_")

    service_name: str = "experiment"
    port: int = 8002
    database_name: str = "experiment"
