"""Telemetry ingest: the sensors' write path, live stream and history queries."""
