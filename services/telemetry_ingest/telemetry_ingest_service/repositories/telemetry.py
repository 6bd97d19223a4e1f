"""SQL of the ingest path: what a batch needs to know, and storing it with one COPY."""

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from backend_common.batches import Same, copy_columns, insert_batch_sql
from backend_common.statuses import CaptureStatus
from telemetry_ingest_service.domain.attachment import Attachment, Binding
from telemetry_ingest_service.domain.batch import Batch
from telemetry_ingest_service.domain.conversion import Converted
from telemetry_ingest_service.domain.journal import Rejection

NOTIFY_CHANNEL = "telemetry"

_TOKENS = """
    SELECT token_hash, expires_at FROM telemetry_seam.sensor_tokens
    WHERE sensor_id = $1 AND (expires_at IS NULL OR expires_at > now())
"""
_CHANNELS = "SELECT channels FROM telemetry_seam.sensor_channels WHERE sensor_id = $1"
# Held until the transaction ends: a publish for a past start waits for it (migration 0018).
_SHARE_TIMELINE = "SELECT telemetry_seam.share_sensor_timeline($1)"
# In one round trip: the published profiles whose validity meets [first, last] of the batch,
# each run the sensor is bound to (with the session asked for, or else its running session), and
# whether the batch is stored already.
_CONTEXT = f"""
    SELECT
        ARRAY(
            SELECT (p.id, p.kind, p.payload, p.valid_from, p.valid_to)
            FROM telemetry_seam.conversion_profiles p
            WHERE p.sensor_id = $1 AND p.valid_from <= $4
              AND (p.valid_to IS NULL OR p.valid_to > $3)
            ORDER BY p.valid_from
        ) AS profiles,
        ARRAY(
            SELECT (r.id, r.status, cs.id, cs.status, cs.started_at)
            FROM telemetry_seam.run_sensors rs
            JOIN telemetry_seam.runs r ON r.id = rs.run_id
            LEFT JOIN telemetry_seam.capture_sessions cs ON cs.run_id = r.id
                AND CASE WHEN $2::uuid IS NULL THEN cs.status = '{CaptureStatus.RUNNING}'
                         ELSE cs.id = $2 END
            WHERE rs.sensor_id = $1
        ) AS bindings,
        EXISTS (
            SELECT 1 FROM telemetry_batches
            WHERE ingest_key = $6 OR (sensor_id = $1 AND client_batch_id = $5)
        ) AS stored
"""
# Nothing when the batch is already stored (same client batch id or ingest key). The
# notification, a pointer to the batch, is delivered when the transaction commits.
_INSERT_BATCH = insert_batch_sql(
    "telemetry_batches",
    (
        "sensor_id",
        "client_batch_id",
        "ingest_key",
        "run_id",
        "capture_session_id",
        "readings",
        "first_timestamp",
        "last_timestamp",
        "received_at",
        "spooled",
    ),
    pointer={"sensor": "$1::text", "run": "$4::text", "session": "$5::text"},
)
_HEARTBEATS = "SELECT telemetry_seam.record_heartbeats($1::uuid[], $2::timestamptz[])"
_TOKENS_USED = "SELECT telemetry_seam.record_token_use($1::bytea[], $2::timestamptz[])"
# Keeps the newest `$10` entries of the sensor (the DELETE does not see the row it inserts).
_JOURNAL = """
    WITH entry AS (
        INSERT INTO ingest_errors (sensor_id, status, code, detail, batch_id, readings, rejected,
                                   errors, request_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    )
    DELETE FROM ingest_errors
    WHERE sensor_id = $1 AND id <= (
        SELECT id FROM ingest_errors WHERE sensor_id = $1 ORDER BY id DESC OFFSET $10 - 1 LIMIT 1
    )
"""
_ENSURE_PARTITIONS = "SELECT telemetry_ensure_partitions(now(), $1)"
_APPLY_RETENTION = "SELECT telemetry_apply_retention($1::interval)"


class Profile(NamedTuple):
    """A conversion profile with a validity, as the converters take it."""

    id: uuid.UUID
    kind: str
    payload: Any
    valid_from: datetime
    valid_to: datetime | None


@dataclass(frozen=True)
class BatchContext:
    """What storing a batch needs to know: the profiles valid over it, the runs its sensor is
    bound to (with the session asked for, or the running one), and whether it is stored."""

    profiles: list[Profile]
    bindings: list[Binding]
    stored: bool


class TelemetryRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def token_digests(self, sensor_id: uuid.UUID) -> list[tuple[bytes, datetime | None]]:
        """Digests of the sensor's tokens that work now, with when each stops working."""
        rows = await self._conn.fetch(_TOKENS, sensor_id)
        return [(row["token_hash"], row["expires_at"]) for row in rows]

    async def declared_channels(self, sensor_id: uuid.UUID) -> list[str] | None:
        """The channel names the sensor declares; None when it declares none."""
        channels: list[str] | None = await self._conn.fetchval(_CHANNELS, sensor_id)
        return channels

    async def share_timeline(self, sensor_id: uuid.UUID) -> None:
        """Holds the sensor's conversion timeline unchanged until the transaction ends: call it
        before reading the profiles, in a statement of its own (so that the reads after it see
        a publish it waited for)."""
        await self._conn.execute(_SHARE_TIMELINE, sensor_id)

    async def context(self, batch: Batch, first: datetime, last: datetime) -> BatchContext:
        """The context of a batch whose readings span [first, last]."""
        row = await self._conn.fetchrow(
            _CONTEXT,
            batch.sensor_id,
            batch.capture_session_id,
            first,
            last,
            batch.client_batch_id,
            batch.ingest_key,
        )
        return BatchContext(
            profiles=[Profile(*profile) for profile in row["profiles"]],
            bindings=[Binding(*binding) for binding in row["bindings"]],
            stored=row["stored"],
        )

    async def insert_batch(
        self,
        *,
        sensor_id: uuid.UUID,
        client_batch_id: str | None,
        ingest_key: uuid.UUID,
        run_id: uuid.UUID | None,
        capture_session_id: uuid.UUID | None,
        readings: int,
        first: datetime,
        last: datetime,
        received_at: datetime,
        spooled: bool,
    ) -> int | None:
        """The new batch's id, or None when it is stored already."""
        batch_id: int | None = await self._conn.fetchval(
            _INSERT_BATCH,
            sensor_id,
            client_batch_id,
            ingest_key,
            run_id,
            capture_session_id,
            readings,
            first,
            last,
            received_at,
            spooled,
            NOTIFY_CHANNEL,
        )
        return batch_id

    async def copy_records(
        self,
        *,
        batch_id: int,
        batch: Batch,
        attached: Attachment,
        converted: Converted,
    ) -> None:
        """The batch's readings, with their conversions, in one COPY."""
        await copy_columns(
            self._conn,
            "telemetry_records",
            {
                "batch_id": Same(batch_id),
                "seq": itertools.count(),
                "sensor_id": Same(batch.sensor_id),
                "run_id": Same(attached.run_id),
                "capture_session_id": Same(attached.capture_session_id),
                "timestamp": batch.timestamps,
                "received_at": Same(batch.received_at),
                "raw_value": batch.raw_values,
                "physical_value": converted.physical,
                "conversion_status": converted.status,
                "profile_id": converted.profile_ids,
                "late": Same(attached.late),
                "meta": batch.metas,
            },
        )

    async def record_heartbeats(
        self, sensors: dict[uuid.UUID, datetime], tokens: dict[bytes, datetime]
    ) -> None:
        if sensors:
            await self._conn.execute(_HEARTBEATS, list(sensors), list(sensors.values()))
        if tokens:
            await self._conn.execute(_TOKENS_USED, list(tokens), list(tokens.values()))

    async def journal(
        self, sensor_id: uuid.UUID, rejection: Rejection, *, request_id: str | None, keep: int
    ) -> None:
        """Adds the entry to the sensor's journal, which keeps its newest `keep`."""
        await self._conn.execute(
            _JOURNAL,
            sensor_id,
            rejection.status,
            rejection.code,
            rejection.detail,
            rejection.batch_id,
            rejection.readings,
            rejection.rejected,
            rejection.errors or [],
            request_id,
            keep,
        )

    async def ensure_partitions(self, months: int) -> None:
        await self._conn.execute(_ENSURE_PARTITIONS, months)

    async def apply_retention(self, keep: timedelta | None) -> None:
        """Readings older than `keep` go (None keeps everything)."""
        await self._conn.execute(_APPLY_RETENTION, keep)
