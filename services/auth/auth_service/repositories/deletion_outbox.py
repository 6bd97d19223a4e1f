"""The outbox of deleted projects (migration auth/0006): written with the deletion, claimed
under a lease by a deliverer, finished under that lease. Instants are the service's clock."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

_COLUMNS = (
    "id, project_id, deleted_by, deleted_at, attempts, next_attempt_at, lease_token, "
    "lease_until, last_status, last_error, last_attempt_at, acknowledged_at"
)
_INSERT = """
    INSERT INTO project_deletion_outbox (project_id, deleted_by, deleted_at, next_attempt_at)
    VALUES ($1, $2, $3, $3)
    ON CONFLICT (project_id) DO NOTHING
"""
# Due rows nobody holds (or whose holder's lease ran out), oldest due first.
_CLAIM = """
    WITH due AS (
        SELECT id FROM project_deletion_outbox
        WHERE acknowledged_at IS NULL AND next_attempt_at <= $1
          AND (lease_until IS NULL OR lease_until <= $1)
        ORDER BY next_attempt_at, id
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    )
    UPDATE project_deletion_outbox o
    SET lease_token = gen_random_uuid(), lease_until = $1 + $2::interval,
        attempts = o.attempts + 1
    FROM due WHERE o.id = due.id
    RETURNING o.id, o.project_id, o.deleted_at, o.attempts, o.lease_token
"""
_ACKNOWLEDGE = """
    UPDATE project_deletion_outbox
    SET lease_token = NULL, lease_until = NULL, acknowledged_at = $3, last_status = $4,
        last_error = NULL, last_attempt_at = $3
    WHERE id = $1 AND lease_token = $2
    RETURNING true
"""
_RETRY = """
    UPDATE project_deletion_outbox
    SET lease_token = NULL, lease_until = NULL, next_attempt_at = $3, last_status = $4,
        last_error = left($5, 1000), last_attempt_at = $6
    WHERE id = $1 AND lease_token = $2
    RETURNING true
"""
_GET = f"SELECT {_COLUMNS} FROM project_deletion_outbox WHERE project_id = $1"


@dataclass(frozen=True)
class Announcement:
    """A claimed row: what to send, and the lease it is held under."""

    id: uuid.UUID
    project_id: uuid.UUID
    deleted_at: datetime
    attempt: int
    lease_token: uuid.UUID


@dataclass(frozen=True)
class OutboxRow:
    id: uuid.UUID
    project_id: uuid.UUID
    deleted_by: uuid.UUID | None
    deleted_at: datetime
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None
    last_status: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    acknowledged_at: datetime | None


class DeletionOutboxRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(
        self, project_id: uuid.UUID, *, deleted_by: uuid.UUID, deleted_at: datetime
    ) -> None:
        await self._conn.execute(_INSERT, project_id, deleted_by, deleted_at)

    async def claim(self, *, now: datetime, lease: timedelta, limit: int) -> list[Announcement]:
        rows = await self._conn.fetch(_CLAIM, now, lease, limit)
        return [
            Announcement(
                row["id"], row["project_id"], row["deleted_at"], row["attempts"], row["lease_token"]
            )
            for row in rows
        ]

    async def acknowledge(self, claimed: Announcement, *, now: datetime, status: int) -> bool:
        """False if the lease had passed to another deliverer."""
        return bool(
            await self._conn.fetchval(_ACKNOWLEDGE, claimed.id, claimed.lease_token, now, status)
        )

    async def retry(
        self,
        claimed: Announcement,
        *,
        at: datetime,
        status: int | None,
        error: str,
        attempted_at: datetime,
    ) -> bool:
        return bool(
            await self._conn.fetchval(
                _RETRY, claimed.id, claimed.lease_token, at, status, error, attempted_at
            )
        )

    async def get(self, project_id: uuid.UUID) -> OutboxRow | None:
        row = await self._conn.fetchrow(_GET, project_id)
        if row is None:
            return None
        return OutboxRow(**{name: row[name] for name in OutboxRow.__dataclass_fields__})
