import uuid

import asyncpg

from experiment_service.domain.errors import SensorAlreadyBound, SensorNotInProject

_INSERT = """
    INSERT INTO run_sensors (run_id, sensor_id, project_id, bound_by) VALUES ($1, $2, $3, $4)
"""
_DELETE = "DELETE FROM run_sensors WHERE run_id = $1 AND sensor_id = $2"
# In id order, so that concurrent lockers cannot deadlock.
_LOCK_SENSORS_OF_RUN = """
    SELECT id FROM sensors WHERE id IN (SELECT sensor_id FROM run_sensors WHERE run_id = $1)
    ORDER BY id FOR SHARE
"""
_BOUND_IN_PROJECT = """
    SELECT EXISTS (SELECT 1 FROM run_sensors WHERE sensor_id = $1 AND project_id = $2)
"""


class RunSensorRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(
        self, *, run_id: uuid.UUID, sensor_id: uuid.UUID, project_id: uuid.UUID, bound_by: uuid.UUID
    ) -> None:
        try:
            await self._conn.execute(_INSERT, run_id, sensor_id, project_id, bound_by)
        except asyncpg.UniqueViolationError:
            raise SensorAlreadyBound() from None
        except asyncpg.ForeignKeyViolationError:
            raise SensorNotInProject() from None

    async def delete(self, run_id: uuid.UUID, sensor_id: uuid.UUID) -> bool:
        status: str = await self._conn.execute(_DELETE, run_id, sensor_id)
        return status != "DELETE 0"

    async def lock_sensors_of_run(self, run_id: uuid.UUID) -> None:
        """Share-locks the run's sensors: none of them is deleted meanwhile."""
        await self._conn.execute(_LOCK_SENSORS_OF_RUN, run_id)

    async def bound_in_project(self, sensor_id: uuid.UUID, project_id: uuid.UUID) -> bool:
        bound: bool = await self._conn.fetchval(_BOUND_IN_PROJECT, sensor_id, project_id)
        return bound
