"""Sensors bound to a run: where the readings of its capture sessions come from."""

import uuid

import asyncpg

from backend_common.db import Database
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller, Role
from backend_common.statuses import RunStatus
from experiment_service.domain import changes
from experiment_service.domain.access import locked_run, run_access, run_role
from experiment_service.domain.errors import (
    RunArchived,
    SensorNotBound,
    SensorNotInProject,
)
from experiment_service.domain.models import BoundSensor
from experiment_service.domain.sensors import Sensors, locked_sensor, sensor_access
from experiment_service.repositories.run_sensors import RunSensorRepository
from experiment_service.repositories.sensors import SensorRepository

ENTITY = "run"


class RunSensors:
    def __init__(self, db: Database, sensors: Sensors) -> None:
        self._db = db
        self._sensors = sensors

    async def bind(self, caller: Caller, run_id: uuid.UUID, sensor_id: uuid.UUID) -> BoundSensor:
        run, role = await run_role(self._db, caller, run_id, Role.EDITOR)
        if run.status == RunStatus.ARCHIVED:
            raise RunArchived()
        access = await sensor_access(self._db, caller, sensor_id, Role.VIEWER)
        if run.project_id not in access.project_ids:
            raise SensorNotInProject()
        async with self._db.transaction() as conn:
            # Share locks: the run is not archived, nor the sensor deleted or unshared, meanwhile.
            if (await locked_run(conn, run_id, "share")).status == RunStatus.ARCHIVED:
                raise RunArchived()
            _, project_ids = await locked_sensor(conn, sensor_id, "share")
            if run.project_id not in project_ids:
                raise SensorNotInProject()
            await RunSensorRepository(conn).insert(
                run_id=run_id,
                sensor_id=sensor_id,
                project_id=run.project_id,
                bound_by=caller.user_id,
            )
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="run.sensor_bound",
                entity_type=ENTITY,
                entry=changes.Entry(run_id, after={"sensor_id": str(sensor_id)}),
                project_id=run.project_id,
            )
            return await self._bound(conn, run_id, sensor_id)

    async def get(self, caller: Caller, run_id: uuid.UUID, sensor_id: uuid.UUID) -> BoundSensor:
        async with self._db.connection() as conn:
            await run_access(conn, caller, run_id, Role.VIEWER)
            return await self._bound(conn, run_id, sensor_id)

    async def unbind(self, caller: Caller, run_id: uuid.UUID, sensor_id: uuid.UUID) -> None:
        _, role = await run_role(self._db, caller, run_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            run = await locked_run(conn, run_id, "share")
            if run.status == RunStatus.ARCHIVED:
                raise RunArchived()
            if not await RunSensorRepository(conn).delete(run_id, sensor_id):
                raise SensorNotBound()
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="run.sensor_unbound",
                entity_type=ENTITY,
                entry=changes.Entry(run_id, before={"sensor_id": str(sensor_id)}),
                project_id=run.project_id,
            )

    async def _bound(
        self, conn: asyncpg.Connection, run_id: uuid.UUID, sensor_id: uuid.UUID
    ) -> BoundSensor:
        found = await SensorRepository(conn).bound_one(run_id, sensor_id, self._sensors.view())
        if found is None:
            raise SensorNotBound()
        return found

    async def list_page(
        self, caller: Caller, run_id: uuid.UUID, page: PageRequest
    ) -> Page[BoundSensor]:
        async with self._db.connection() as conn:
            await run_access(conn, caller, run_id, Role.VIEWER)
            return await SensorRepository(conn).bound_to_run(run_id, self._sensors.view(), page)
