import uuid
from datetime import datetime

import asyncpg

from backend_common.pagination import Page, PageRequest
from backend_common.sql import Query
from experiment_service.domain.errors import ProfileVersionTaken, SensorNotFound
from experiment_service.domain.listing import SortOrder
from experiment_service.domain.models import ConversionProfile
from experiment_service.models import ProfileCreate
from experiment_service.repositories.listing import page_in, paged


def _select(query: Query, now: datetime) -> str:
    at = query.param(now)
    return f"""
        SELECT id, sensor_id, version, kind, payload, description, valid_from, valid_to,
               deprecated_at, created_by, published_by, created_at, updated_at,
               CASE WHEN valid_from IS NULL THEN 'draft'
                    WHEN valid_from > {at} THEN 'scheduled'
                    WHEN valid_to IS NULL OR valid_to > {at} THEN 'active'
                    ELSE 'deprecated' END AS status
        FROM conversion_profiles
    """


_ORDER = SortOrder.CREATED_AT
_INSERT = """
    INSERT INTO conversion_profiles (sensor_id, version, kind, payload, description, created_by)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING id
"""
# valid_to follows from the timeline: where the next profile starts, or where this one was
# deprecated, whichever comes first (least() skips NULLs).
_RESHAPE_TIMELINE = """
    UPDATE conversion_profiles p SET valid_to = t.valid_to
    FROM (
        SELECT id, least(lead(valid_from) OVER (ORDER BY valid_from), deprecated_at) AS valid_to
        FROM conversion_profiles
        WHERE sensor_id = $1 AND valid_from IS NOT NULL
    ) t
    WHERE p.id = t.id AND p.valid_to IS DISTINCT FROM t.valid_to
"""
_START = "UPDATE conversion_profiles SET valid_from = $2, published_by = $3 WHERE id = $1"
_DEPRECATE = "UPDATE conversion_profiles SET deprecated_at = $2 WHERE id = $1"
# Until the transaction ends; ingest holds the same lock shared (migration 0018).
_LOCK_TIMELINE = "SELECT lock_sensor_timeline($1)"
_STARTS_AT = (
    "SELECT EXISTS (SELECT 1 FROM conversion_profiles WHERE sensor_id = $1 AND valid_from = $2)"
)


class ConversionProfileRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(
        self, *, sensor_id: uuid.UUID, created_by: uuid.UUID, data: ProfileCreate
    ) -> uuid.UUID:
        try:
            profile_id: uuid.UUID = await self._conn.fetchval(
                _INSERT,
                sensor_id,
                data.version,
                data.kind,
                data.payload,
                data.description,
                created_by,
            )
        except asyncpg.UniqueViolationError:
            raise ProfileVersionTaken() from None
        except asyncpg.ForeignKeyViolationError:
            # Deleted since the caller's role was checked.
            raise SensorNotFound() from None
        return profile_id

    async def get(
        self, sensor_id: uuid.UUID, profile_id: uuid.UUID, now: datetime
    ) -> ConversionProfile | None:
        query = Query()
        select = _select(query, now)
        query.where(f"id = {query.param(profile_id)}")
        query.where(f"sensor_id = {query.param(sensor_id)}")
        row = await self._conn.fetchrow(f"{select} WHERE {query.where_sql}", *query.params)
        return ConversionProfile.model_validate(dict(row)) if row else None

    async def find(
        self, sensor_id: uuid.UUID, page: PageRequest, now: datetime
    ) -> Page[ConversionProfile]:
        """Oldest first."""
        query = Query()
        select = _select(query, now)
        query.where(f"sensor_id = {query.param(sensor_id)}")
        rows = await self._conn.fetch(paged(select, query, _ORDER, page), *query.params)
        return page_in([ConversionProfile.model_validate(dict(row)) for row in rows], _ORDER, page)

    async def start(
        self, profile_id: uuid.UUID, *, valid_from: datetime, published_by: uuid.UUID
    ) -> None:
        """The profile becomes valid from `valid_from` on (scheduled, or published)."""
        await self._conn.execute(_START, profile_id, valid_from, published_by)

    async def deprecate(self, profile_id: uuid.UUID, *, at: datetime) -> None:
        await self._conn.execute(_DEPRECATE, profile_id, at)

    async def lock_timeline(self, sensor_id: uuid.UUID) -> None:
        """Waits for the batches being stored for the sensor, and keeps new ones from reading
        its timeline, until the transaction ends."""
        await self._conn.execute(_LOCK_TIMELINE, sensor_id)

    async def reshape_timeline(self, sensor_id: uuid.UUID) -> None:
        """Recomputes every valid_to of the sensor's profiles from their starts and ends."""
        await self._conn.execute(_RESHAPE_TIMELINE, sensor_id)

    async def starts_at(self, sensor_id: uuid.UUID, instant: datetime) -> bool:
        taken: bool = await self._conn.fetchval(_STARTS_AT, sensor_id, instant)
        return taken
