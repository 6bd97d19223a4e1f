"""The MLflow door: MLflow's REST API 2.0 (the part its client uses for tracking) and its
artifact proxy, translated into calls of ETP's own domain, so that training code logging with
MLflow's client logs into ETP unchanged (docs/mlflow.md)."""

from aiohttp import web

from experiment_service.api.mlflow import artifacts, experiments, metrics, runs
from experiment_service.api.mlflow.errors import mlflow_errors

__all__ = ["mlflow_errors", "routes"]

routes: list[web.AbstractRouteDef] = [
    *experiments.routes,
    *runs.routes,
    *metrics.routes,
    *artifacts.routes,
]
