"""A project's settings for the background jobs (docs/jobs.md): after how long without news a
running run is stale, how long telemetry keeps raw readings and their per-minute rollup. Members
read them; owners change them (audited as `project_settings.updated`)."""

import uuid

from backend_common.db import Database
from backend_common.rbac import Caller, Role
from experiment_service.domain import changes
from experiment_service.domain.errors import RetentionOutOfOrder
from experiment_service.domain.models import ProjectSettings
from experiment_service.models import ProjectSettingsUpdate
from experiment_service.repositories.project_settings import ProjectSettingsRepository

ENTITY = "project_settings"
_FIELDS = (
    "stale_run_after_seconds",
    "telemetry_raw_retention_days",
    "telemetry_rollup_retention_days",
)


class ProjectSettingsService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, caller: Caller, project_id: uuid.UUID) -> ProjectSettings:
        await caller.require(project_id, Role.VIEWER)
        async with self._db.connection() as conn:
            return await ProjectSettingsRepository(conn).get(project_id)

    async def update(
        self, caller: Caller, project_id: uuid.UUID, patch: ProjectSettingsUpdate
    ) -> ProjectSettings:
        role = await caller.require(project_id, Role.OWNER)
        async with self._db.transaction() as conn:
            settings = ProjectSettingsRepository(conn)
            current = await settings.get(project_id, for_update=True)
            wanted = current.model_copy(
                update={name: getattr(patch, name) for name in patch.model_fields_set}
            )
            raw = wanted.telemetry_raw_retention_days
            rollup = wanted.telemetry_rollup_retention_days
            if raw is not None and rollup is not None and raw > rollup:
                raise RetentionOutOfOrder(
                    f"Raw readings kept {raw} days would outlive their rollup ({rollup} days)."
                )
            updated = await settings.put(wanted, updated_by=caller.user_id)
            before, after = current.model_dump(mode="json"), updated.model_dump(mode="json")
            names = [name for name in _FIELDS if before[name] != after[name]]
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="project_settings.updated",
                entity_type=ENTITY,
                entry=changes.Entry(
                    project_id,
                    before={name: before[name] for name in names},
                    after={name: after[name] for name in names},
                ),
                project_id=project_id,
            )
        return updated
