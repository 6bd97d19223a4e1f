"""Artifacts: files per run, their bytes in an object store (experiment_service.storage)."""
