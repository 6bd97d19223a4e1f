"""A project's settings for the background jobs (`project_settings`, migration 0012)."""

import uuid

import asyncpg

from experiment_service.domain.models import ProjectSettings

COLUMNS = (
    "project_id, stale_run_after_seconds, telemetry_raw_retention_days,"
    " telemetry_rollup_retention_days, updated_by, updated_at"
)
_GET = f"SELECT {COLUMNS} FROM project_settings WHERE project_id = $1"
_GET_FOR_UPDATE = f"{_GET} FOR UPDATE"
_PUT = f"""
    INSERT INTO project_settings (project_id, stale_run_after_seconds,
                                  telemetry_raw_retention_days, telemetry_rollup_retention_days,
                                  updated_by, updated_at)
    VALUES ($1, $2, $3, $4, $5, now())
    ON CONFLICT (project_id) DO UPDATE
        SET stale_run_after_seconds = EXCLUDED.stale_run_after_seconds,
            telemetry_raw_retention_days = EXCLUDED.telemetry_raw_retention_days,
            telemetry_rollup_retention_days = EXCLUDED.telemetry_rollup_retention_days,
            updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
    RETURNING {COLUMNS}
"""


class ProjectSettingsRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def get(self, project_id: uuid.UUID, *, for_update: bool = False) -> ProjectSettings:
        """The project's settings (all None where it set none)."""
        row = await self._conn.fetchrow(_GET_FOR_UPDATE if for_update else _GET, project_id)
        if row is None:
            return ProjectSettings(project_id=project_id)
        return ProjectSettings.model_validate(dict(row))

    async def put(self, settings: ProjectSettings, *, updated_by: uuid.UUID) -> ProjectSettings:
        row = await self._conn.fetchrow(
            _PUT,
            settings.project_id,
            settings.stale_run_after_seconds,
            settings.telemetry_raw_retention_days,
            settings.telemetry_rollup_retention_days,
            updated_by,
        )
        return ProjectSettings.model_validate(dict(row))
