from pydantic_settings import SettingsConfigDict

from backend_common.settings import DatabaseSettings


class ExperimentSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXPERIMENT_")

    service_name: str = "experiment"
    port: int = 8002
    database_name: str = "experiment"
    auth_url: str = "http://127.0.0.1:8001"
