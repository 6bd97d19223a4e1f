from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from backend_common.settings import AuthClientSettings, DatabaseSettings


class ExperimentSettings(DatabaseSettings, AuthClientSettings):
    model_config = SettingsConfigDict(env_prefix="EXPERIMENT_")

    service_name: str = "experiment"
    port: int = 8002
    database_name: str = "experiment"
    # A sensor heard from within this many seconds is online, within the second delayed.
    sensor_online_seconds: float = Field(default=10.0, gt=0)
    sensor_offline_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Self:
        if self.sensor_offline_seconds < self.sensor_online_seconds:
            raise ValueError("sensor_offline_seconds must not be below sensor_online_seconds")
        return self
