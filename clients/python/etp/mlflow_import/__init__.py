"""`etp import mlflow`: MLflow's experiments, runs, metrics and artifacts copied into ETP."""
