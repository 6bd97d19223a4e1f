"""Conversion profiles of a sensor: versions of its raw → physical conversion, on a timeline.

A profile is a draft until it is scheduled (valid from a future instant) or published (valid
from now). Its validity ends where the next profile's begins, or where it was deprecated, so the
profiles of a sensor never overlap: each reading time has at most one profile, and publishing
one ends the previous one's validity at that instant. Changes to a sensor's timeline take the
sensor's row lock, so two racing publishes happen one after the other.

A profile's payload recovers raw values from physical ones, so a reader who may not see the
sensor's raw values (a viewer under `physical_only` in every project of the sensor they are in)
gets it as null (domain.visibility).
"""

import uuid
from datetime import datetime, timedelta

import asyncpg

from backend_common import conversion
from backend_common.clock import Clock
from backend_common.conversion import ConversionError, Converter
from backend_common.db import Database
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller, Role
from experiment_service.domain import changes, visibility
from experiment_service.domain.errors import (
    ConversionProfileNotFound,
    InvalidTransition,
    ProfileNotInFuture,
    ProfileNotInPast,
    ProfileStartTaken,
)
from experiment_service.domain.models import (
    ConversionProfile,
    PreviewPoint,
    ProfileStatus,
    PublishedProfile,
)
from experiment_service.domain.sensors import SensorAccess, lock_sensor, sensor_access
from experiment_service.domain.transitions import PROFILE_TRANSITIONS
from experiment_service.domain.webhooks import outbox
from experiment_service.models import ProfileCreate
from experiment_service.repositories.backfills import BackfillRepository
from experiment_service.repositories.conversion_profiles import ConversionProfileRepository

ENTITY = "conversion_profile"
# Instants are stored with microsecond precision.
_TICK = timedelta(microseconds=1)


class ConversionProfiles:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(
        self, caller: Caller, sensor_id: uuid.UUID, data: ProfileCreate
    ) -> ConversionProfile:
        access = await sensor_access(self._db, caller, sensor_id, Role.EDITOR, manage=True)
        async with self._db.transaction() as conn:
            profiles = ConversionProfileRepository(conn)
            profile_id = await profiles.insert(
                sensor_id=sensor_id, created_by=caller.user_id, data=data
            )
            profile = await self._get(profiles, sensor_id, profile_id)
            await changes.record(
                conn,
                caller=caller,
                role=access.role,
                action="conversion_profile.created",
                entity_type=ENTITY,
                entry=changes.created(profile),
                project_id=access.home_project_id,
                parent_id=sensor_id,
            )
        return profile

    async def get(
        self, caller: Caller, sensor_id: uuid.UUID, profile_id: uuid.UUID
    ) -> ConversionProfile:
        access = await sensor_access(self._db, caller, sensor_id, Role.VIEWER)
        raw = await _sees_raw(caller, access)
        async with self._db.connection() as conn:
            profile = await self._get(ConversionProfileRepository(conn), sensor_id, profile_id)
        return visibility.profile(profile, sees_raw=raw)

    async def list_page(
        self, caller: Caller, sensor_id: uuid.UUID, page: PageRequest
    ) -> Page[ConversionProfile]:
        access = await sensor_access(self._db, caller, sensor_id, Role.VIEWER)
        raw = await _sees_raw(caller, access)
        async with self._db.connection() as conn:
            found = await ConversionProfileRepository(conn).find(sensor_id, page, self._clock())
        return found.map(lambda profile: visibility.profile(profile, sees_raw=raw))

    async def preview(
        self, caller: Caller, sensor_id: uuid.UUID, converter: Converter, raw_values: list[float]
    ) -> list[PreviewPoint]:
        """Each raw value converted by a profile not yet created, for whoever may create one."""
        await sensor_access(self._db, caller, sensor_id, Role.EDITOR, manage=True)
        return [_preview_point(converter, raw) for raw in raw_values]

    async def schedule(
        self, caller: Caller, sensor_id: uuid.UUID, profile_id: uuid.UUID, valid_from: datetime
    ) -> ConversionProfile:
        """Makes a draft valid from a future instant."""
        access = await sensor_access(self._db, caller, sensor_id, Role.EDITOR, manage=True)
        async with self._db.transaction() as conn:
            profiles, current = await self._transition(
                conn, sensor_id, profile_id, ProfileStatus.SCHEDULED
            )
            if valid_from <= self._clock():
                raise ProfileNotInFuture()
            if await profiles.starts_at(sensor_id, valid_from):
                raise ProfileStartTaken()
            await profiles.start(current.id, valid_from=valid_from, published_by=caller.user_id)
            # The sweep that announces it later has no member's answer to go by.
            await outbox.learn_policy(
                conn, access.home_project_id, physical_only=access.home_physical_only
            )
            return await self._reshaped(
                conn, caller, access, profiles, current, "conversion_profile.scheduled"
            )

    async def publish(
        self, caller: Caller, sensor_id: uuid.UUID, profile_id: uuid.UUID
    ) -> ConversionProfile:
        """Makes a draft or scheduled profile valid from now on."""
        access = await sensor_access(self._db, caller, sensor_id, Role.EDITOR, manage=True)
        async with self._db.transaction() as conn:
            profiles, current = await self._transition(
                conn, sensor_id, profile_id, ProfileStatus.ACTIVE
            )
            start = self._clock()
            # Publishes within one clock tick take the next free instants, in order.
            while await profiles.starts_at(sensor_id, start):
                start += _TICK
            await profiles.start(current.id, valid_from=start, published_by=caller.user_id)
            return await self._reshaped(
                conn, caller, access, profiles, current, "conversion_profile.activated"
            )

    async def publish_backfill(
        self, caller: Caller, sensor_id: uuid.UUID, profile_id: uuid.UUID, valid_from: datetime
    ) -> PublishedProfile:
        """Makes a draft or scheduled profile valid from a past instant, for owners: the timeline
        is cut as for a publish (the profile ends where the next one starts), and a backfill
        recomputes the stored readings of its validity (docs/telemetry.md, "Backfill"). Asked
        again for the same profile, the answer names the same backfill."""
        access = await sensor_access(self._db, caller, sensor_id, Role.OWNER, manage=True)
        async with self._db.transaction() as conn:
            # Before anything else: a batch being stored holds the timeline until it commits.
            await ConversionProfileRepository(conn).lock_timeline(sensor_id)
            await lock_sensor(conn, sensor_id)
            backfills = BackfillRepository(conn)
            known = await backfills.of_profile(profile_id)
            if known is not None:
                profile = await self._get(ConversionProfileRepository(conn), sensor_id, profile_id)
                return PublishedProfile(**profile.model_dump(), backfill_id=known.id)
            profiles, current = await self._transition(
                conn, sensor_id, profile_id, ProfileStatus.ACTIVE
            )
            now = self._clock()
            if valid_from > now:
                raise ProfileNotInPast()
            if await profiles.starts_at(sensor_id, valid_from):
                raise ProfileStartTaken()
            await profiles.start(current.id, valid_from=valid_from, published_by=caller.user_id)
            updated = await self._reshaped(
                conn, caller, access, profiles, current, "conversion_profile.activated"
            )
            backfill = await backfills.insert(
                sensor_id=sensor_id,
                profile_id=profile_id,
                range_from=valid_from,
                range_to=updated.valid_to,
                created_by=caller.user_id,
                now=now,
            )
        return PublishedProfile(**updated.model_dump(), backfill_id=backfill.id)

    async def deprecate(
        self, caller: Caller, sensor_id: uuid.UUID, profile_id: uuid.UUID
    ) -> ConversionProfile:
        """Ends the active profile's validity now; readings from now on have no profile."""
        access = await sensor_access(self._db, caller, sensor_id, Role.EDITOR, manage=True)
        async with self._db.transaction() as conn:
            profiles, current = await self._transition(
                conn, sensor_id, profile_id, ProfileStatus.DEPRECATED
            )
            assert current.valid_from is not None  # an active profile has started
            await profiles.deprecate(current.id, at=max(self._clock(), current.valid_from + _TICK))
            return await self._reshaped(
                conn, caller, access, profiles, current, "conversion_profile.deprecated"
            )

    async def _transition(
        self,
        conn: asyncpg.Connection,
        sensor_id: uuid.UUID,
        profile_id: uuid.UUID,
        target: ProfileStatus,
    ) -> tuple[ConversionProfileRepository, ConversionProfile]:
        # The sensor's row lock serialises every change to its timeline.
        await lock_sensor(conn, sensor_id)
        profiles = ConversionProfileRepository(conn)
        current = await self._get(profiles, sensor_id, profile_id)
        if target not in PROFILE_TRANSITIONS[current.status]:
            raise InvalidTransition(f"This profile is {current.status}; it cannot become {target}.")
        return profiles, current

    async def _reshaped(
        self,
        conn: asyncpg.Connection,
        caller: Caller,
        access: SensorAccess,
        profiles: ConversionProfileRepository,
        current: ConversionProfile,
        action: str,
    ) -> ConversionProfile:
        """After a change of the profile's start or end: the sensor's timeline follows, and the
        change is recorded."""
        await profiles.reshape_timeline(current.sensor_id)
        updated = await self._get(profiles, current.sensor_id, current.id)
        await changes.record(
            conn,
            caller=caller,
            role=access.role,
            action=action,
            entity_type=ENTITY,
            entry=changes.changed(current, updated),
            project_id=access.home_project_id,
            parent_id=current.sensor_id,
            events=[
                await outbox.profile_activated(
                    conn,
                    updated,
                    access.home_project_id,
                    physical_only=access.home_physical_only,
                )
            ]
            if action == outbox.ACTIVATED
            else [],
        )
        return updated

    async def _get(
        self, profiles: ConversionProfileRepository, sensor_id: uuid.UUID, profile_id: uuid.UUID
    ) -> ConversionProfile:
        profile = await profiles.get(sensor_id, profile_id, self._clock())
        if profile is None:
            raise ConversionProfileNotFound()
        return profile


async def _sees_raw(caller: Caller, access: SensorAccess) -> bool:
    """Whether one of the sensor's projects the caller is in shows them raw values (the rule of
    telemetry reads); the answers are cached from the access check."""
    for project_id in [access.home_project_id, *access.project_ids]:
        membership = await caller.membership(project_id)
        if membership is not None and membership.sees_raw:
            return True
    return False


def _preview_point(converter: Converter, raw: float) -> PreviewPoint:
    try:
        return PreviewPoint(raw_value=raw, physical_value=conversion.convert(converter, raw))
    except ConversionError as exc:
        return PreviewPoint(raw_value=raw, physical_value=None, error=str(exc))
