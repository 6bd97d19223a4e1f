"""Sensors: their tokens, their projects, and who may do what with them.

A sensor has a home project and may belong to more. Members of any of its projects see it; its
home project manages it (changes, tokens, profiles, projects). Liveness (`status`) is computed
from the last heartbeat that telemetry ingest records.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import asyncpg

from backend_common import sensor_tokens
from backend_common.clock import Clock
from backend_common.db import Database
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller, Role, RoleTooLow
from experiment_service.domain import changes, visibility
from experiment_service.domain.errors import (
    HomeProjectNotRemovable,
    SensorAlreadyInProject,
    SensorBoundInProject,
    SensorInActiveCapture,
    SensorLimit,
    SensorNotFound,
    SensorProjectLimit,
    SensorProjectNotFound,
)
from experiment_service.domain.listing import SortOrder
from experiment_service.domain.models import IngestError, Sensor, SensorProject, SensorWithToken
from experiment_service.domain.webhooks import outbox
from experiment_service.domain.webhooks.outbox import Event
from experiment_service.models import ProfileCreate, SensorCreate, SensorUpdate
from experiment_service.repositories.conversion_profiles import ConversionProfileRepository
from experiment_service.repositories.run_sensors import RunSensorRepository
from experiment_service.repositories.sensors import SensorFilter, SensorRepository, SensorView

ENTITY = "sensor"
MAX_SENSOR_PROJECTS = 100


@dataclass(frozen=True)
class Liveness:
    """A sensor heard from within `online_within` is online, within `offline_after` delayed,
    earlier offline; one never heard from is never_seen."""

    online_within: timedelta = timedelta(seconds=10)
    offline_after: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class SensorAccess:
    """The caller's standing toward one sensor."""

    home_project_id: uuid.UUID
    project_ids: list[uuid.UUID]
    role: Role
    # The home project's raw-value policy, as the caller's membership answer there says.
    home_physical_only: bool = False


async def sensor_access(
    db: Database,
    caller: Caller,
    sensor_id: uuid.UUID,
    minimum: Role,
    *,
    manage: bool = False,
) -> SensorAccess:
    """Checks the caller's role: in the home project to `manage`, else in any of its projects.

    Someone outside every project of the sensor gets SensorNotFound (it does not exist for them);
    someone who sees it without the needed role gets RoleTooLow. The sensor is read (not locked)
    on a connection released before the roles are asked for, which may take an HTTP call.
    """
    async with db.connection() as conn:
        found = await SensorRepository(conn).projects_of(sensor_id)
    if found is None:
        raise SensorNotFound()
    home, project_ids = found
    in_home = await caller.membership(home)
    roles = [None if in_home is None else in_home.role]
    if roles[0] is None or not (manage or roles[0].at_least(minimum)):
        for project_id in project_ids:
            if project_id != home:
                roles.append(await caller.role_in(project_id))
    best = max((role for role in roles if role is not None), key=lambda r: r.rank, default=None)
    if best is None:
        raise SensorNotFound()
    role = roles[0] if manage else best
    if role is None or not role.at_least(minimum):
        where = "the sensor's home project" if manage else "the sensor's projects"
        raise RoleTooLow(f"This needs the {minimum} role in {where}.")
    return SensorAccess(
        home_project_id=home,
        project_ids=project_ids,
        role=role,
        home_physical_only=in_home is not None and in_home.physical_only,
    )


async def lock_sensor(conn: asyncpg.Connection, sensor_id: uuid.UUID) -> None:
    """Row-locks the sensor (for a change to it, its tokens or its timeline) until the
    transaction ends; SensorNotFound if it is gone. Its home project never changes."""
    if not await SensorRepository(conn).lock(sensor_id, "update"):
        raise SensorNotFound()


async def locked_sensor(
    conn: asyncpg.Connection, sensor_id: uuid.UUID, lock: Literal["update", "share"]
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """The sensor's home project and projects, row-locked (they do not change until the
    transaction ends); SensorNotFound if it is gone."""
    found = await SensorRepository(conn).projects_of(sensor_id, lock=lock)
    if found is None:
        raise SensorNotFound()
    return found


class Sensors:
    def __init__(
        self, db: Database, clock: Clock, liveness: Liveness, *, max_sensors: int = 1000
    ) -> None:
        self._db = db
        self._clock = clock
        self._liveness = liveness
        self._max_sensors = max_sensors  # per project, its own and those shared with it

    def view(self) -> SensorView:
        return SensorView(
            now=self._clock(),
            online_within=self._liveness.online_within,
            offline_after=self._liveness.offline_after,
        )

    async def create(
        self, caller: Caller, data: SensorCreate, *, first_profile: ProfileCreate | None
    ) -> SensorWithToken:
        member = await visibility.required(caller, data.project_id, Role.EDITOR)
        role = member.role
        async with self._db.transaction() as conn:
            sensors = SensorRepository(conn)
            await self._check_room(sensors, data.project_id)
            sensor_id = await sensors.insert(created_by=caller.user_id, data=data)
            token = sensor_tokens.mint(sensor_id)
            await sensors.add_token(sensor_id, token)
            if first_profile is not None:
                await self._publish_first_profile(
                    conn, caller, member, sensor_id, data.project_id, first_profile
                )
            sensor = await self._get(sensors, sensor_id)
            await changes.record(
                conn,
                caller=caller,
                role=role,
                action="sensor.created",
                entity_type=ENTITY,
                entry=changes.created(sensor),
                project_id=sensor.project_id,
                events=[Event("sensor.created", sensor)],
            )
        return SensorWithToken(**sensor.model_dump(), token=token.token)

    async def _check_room(self, sensors: SensorRepository, project_id: uuid.UUID) -> None:
        """Refuses a sensor more in a project that has its quota (held until the transaction
        ends, so concurrent additions cannot pass it together)."""
        if await sensors.count_in_locked_project(project_id) >= self._max_sensors:
            raise SensorLimit(f"A project has at most {self._max_sensors} sensors.")

    async def _publish_first_profile(
        self,
        conn: asyncpg.Connection,
        caller: Caller,
        member: visibility.Visibility,
        sensor_id: uuid.UUID,
        project_id: uuid.UUID,
        data: ProfileCreate,
    ) -> None:
        profiles = ConversionProfileRepository(conn)
        profile_id = await profiles.insert(
            sensor_id=sensor_id, created_by=caller.user_id, data=data
        )
        now = self._clock()
        await profiles.start(profile_id, valid_from=now, published_by=caller.user_id)
        profile = await profiles.get(sensor_id, profile_id, now)
        assert profile is not None
        await changes.record(
            conn,
            caller=caller,
            role=member.role,
            action="conversion_profile.activated",
            entity_type="conversion_profile",
            entry=changes.created(profile),
            project_id=project_id,
            parent_id=sensor_id,
            events=[
                await outbox.profile_activated(
                    conn, profile, project_id, physical_only=member.physical_only
                )
            ],
        )

    async def get(self, caller: Caller, sensor_id: uuid.UUID) -> Sensor:
        await sensor_access(self._db, caller, sensor_id, Role.VIEWER)
        async with self._db.connection() as conn:
            return await self._get(SensorRepository(conn), sensor_id)

    async def list_page(
        self, caller: Caller, flt: SensorFilter, sort: SortOrder, page: PageRequest
    ) -> Page[Sensor]:
        await caller.require(flt.project_id, Role.VIEWER)
        async with self._db.connection() as conn:
            return await SensorRepository(conn).find(flt, sort, page, self.view())

    async def update(self, caller: Caller, sensor_id: uuid.UUID, patch: SensorUpdate) -> Sensor:
        access = await sensor_access(self._db, caller, sensor_id, Role.EDITOR, manage=True)
        async with self._db.transaction() as conn:
            await lock_sensor(conn, sensor_id)
            sensors = SensorRepository(conn)
            current = await self._get(sensors, sensor_id)
            await sensors.update(sensor_id, patch)
            updated = await self._get(sensors, sensor_id)
            await changes.record(
                conn,
                caller=caller,
                role=access.role,
                action="sensor.updated",
                entity_type=ENTITY,
                entry=changes.changed(current, updated),
                project_id=access.home_project_id,
            )
        return updated

    async def delete(self, caller: Caller, sensor_id: uuid.UUID) -> None:
        access = await sensor_access(self._db, caller, sensor_id, Role.OWNER, manage=True)
        async with self._db.transaction() as conn:
            await lock_sensor(conn, sensor_id)
            sensors = SensorRepository(conn)
            if await sensors.in_active_capture(sensor_id):
                raise SensorInActiveCapture()
            current = await self._get(sensors, sensor_id)
            await sensors.delete(sensor_id)
            await changes.record(
                conn,
                caller=caller,
                role=access.role,
                action="sensor.deleted",
                entity_type=ENTITY,
                entry=changes.deleted(current),
                project_id=access.home_project_id,
            )

    async def rotate_token(
        self, caller: Caller, sensor_id: uuid.UUID, *, grace: timedelta
    ) -> SensorWithToken:
        """A new token; the old ones stop working now, or at the end of the grace period."""
        access = await sensor_access(self._db, caller, sensor_id, Role.OWNER, manage=True)
        async with self._db.transaction() as conn:
            await lock_sensor(conn, sensor_id)
            sensors = SensorRepository(conn)
            now = self._clock()
            await sensors.retire_tokens(sensor_id, until=now + grace, now=now)
            token = sensor_tokens.mint(sensor_id)
            await sensors.add_token(sensor_id, token)
            sensor = await self._get(sensors, sensor_id)
            await self._record_token_change(
                conn,
                caller,
                access,
                sensor,
                "sensor.token_rotated",
                details={"grace_seconds": int(grace.total_seconds())},
                events=[Event("sensor.token_rotated", sensor)],
            )
        return SensorWithToken(**sensor.model_dump(), token=token.token)

    async def revoke_tokens(self, caller: Caller, sensor_id: uuid.UUID) -> Sensor:
        """Every token of the sensor stops working at once."""
        access = await sensor_access(self._db, caller, sensor_id, Role.OWNER, manage=True)
        async with self._db.transaction() as conn:
            await lock_sensor(conn, sensor_id)
            sensors = SensorRepository(conn)
            await sensors.revoke_tokens(sensor_id)
            sensor = await self._get(sensors, sensor_id)
            await self._record_token_change(conn, caller, access, sensor, "sensor.token_revoked")
        return sensor

    async def ingest_errors(
        self, caller: Caller, sensor_id: uuid.UUID, page: PageRequest
    ) -> Page[IngestError]:
        """The batches telemetry ingest refused from this sensor, newest first."""
        await sensor_access(self._db, caller, sensor_id, Role.VIEWER)
        async with self._db.connection() as conn:
            return await SensorRepository(conn).ingest_errors(sensor_id, page)

    async def projects(self, caller: Caller, sensor_id: uuid.UUID) -> list[SensorProject]:
        await sensor_access(self._db, caller, sensor_id, Role.VIEWER)
        async with self._db.connection() as conn:
            return await SensorRepository(conn).projects(sensor_id)

    async def add_project(
        self, caller: Caller, sensor_id: uuid.UUID, project_id: uuid.UUID
    ) -> SensorProject:
        """Shares the sensor with another project the caller may add to (editor there)."""
        access = await sensor_access(self._db, caller, sensor_id, Role.OWNER, manage=True)
        await caller.require(project_id, Role.EDITOR)
        async with self._db.transaction() as conn:
            _, project_ids = await locked_sensor(conn, sensor_id, "update")
            if len(project_ids) >= MAX_SENSOR_PROJECTS:
                raise SensorProjectLimit(
                    f"A sensor belongs to at most {MAX_SENSOR_PROJECTS} projects."
                )
            sensors = SensorRepository(conn)
            if project_id not in project_ids:
                await self._check_room(sensors, project_id)
            if not await sensors.add_project(sensor_id, project_id, added_by=caller.user_id):
                raise SensorAlreadyInProject()
            link = next(p for p in await sensors.projects(sensor_id) if p.project_id == project_id)
            await self._record_project_change(
                conn, caller, access.role, access, sensor_id, "sensor.project_added", project_id
            )
        return link

    async def remove_project(
        self, caller: Caller, sensor_id: uuid.UUID, project_id: uuid.UUID
    ) -> None:
        """Unshares the sensor: the owner of its home project or of that project may."""
        access = await sensor_access(self._db, caller, sensor_id, Role.VIEWER)
        if project_id not in access.project_ids:
            raise SensorProjectNotFound()
        if project_id == access.home_project_id:
            raise HomeProjectNotRemovable()
        roles = (await caller.role_in(access.home_project_id), await caller.role_in(project_id))
        if Role.OWNER not in roles:
            raise RoleTooLow(
                "This needs the owner role in the sensor's home project or in that project."
            )
        async with self._db.transaction() as conn:
            _, project_ids = await locked_sensor(conn, sensor_id, "update")
            if project_id not in project_ids:
                raise SensorProjectNotFound()
            if await RunSensorRepository(conn).bound_in_project(sensor_id, project_id):
                raise SensorBoundInProject()
            await SensorRepository(conn).remove_project(sensor_id, project_id)
            await self._record_project_change(
                conn, caller, Role.OWNER, access, sensor_id, "sensor.project_removed", project_id
            )

    async def _get(self, sensors: SensorRepository, sensor_id: uuid.UUID) -> Sensor:
        sensor = await sensors.get(sensor_id, self.view())
        if sensor is None:
            raise SensorNotFound()
        return sensor

    @staticmethod
    async def _record_token_change(
        conn: asyncpg.Connection,
        caller: Caller,
        access: SensorAccess,
        sensor: Sensor,
        action: str,
        *,
        details: dict[str, Any] | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        await changes.record(
            conn,
            caller=caller,
            role=access.role,
            action=action,
            entity_type=ENTITY,
            entry=changes.Entry(
                sensor.id, after={"token_preview": sensor.token_preview, **(details or {})}
            ),
            project_id=access.home_project_id,
            events=events,
        )

    @staticmethod
    async def _record_project_change(
        conn: asyncpg.Connection,
        caller: Caller,
        role: Role,
        access: SensorAccess,
        sensor_id: uuid.UUID,
        action: str,
        project_id: uuid.UUID,
    ) -> None:
        await changes.record(
            conn,
            caller=caller,
            role=role,
            action=action,
            entity_type=ENTITY,
            entry=changes.Entry(sensor_id, after={"project_id": str(project_id)}),
            project_id=access.home_project_id,
        )
