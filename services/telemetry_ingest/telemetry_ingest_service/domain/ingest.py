"""The ingest path: a sensor's batch from request body to stored readings (or a clear refusal).

accept(): check the decoded batch (all or nothing) → store it in one transaction: attach it to a
run and capture session, convert each reading by the profile valid at its timestamp, insert the
batch row (idempotent, and a NOTIFY for live streams) and COPY the readings. A refusal is a
domain error; the API answers it and keeps it in the sensor's ingest error journal (journal()).

When PostgreSQL is unreachable (or does not answer within `db_timeout`), a checked batch is
appended to the on-disk spool instead and acknowledged as spooled; for a second after such a
failure, batches go straight to the spool. drain_spool() stores spooled batches once PostgreSQL
is back; a full spool refuses the batch (NotStored). A store whose outcome is unclear (the
connection dropped around the commit) is spooled too: its ingest key makes the second store a
no-op.
"""

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import structlog

from backend_common.batches import Limits
from backend_common.clock import Clock
from backend_common.db import UNAVAILABLE, Database, within
from backend_common.errors import DomainError
from telemetry_ingest_service.domain.attachment import NONE, attach
from telemetry_ingest_service.domain.batch import Batch, check_channels, parse_batch
from telemetry_ingest_service.domain.conversion import (
    ERROR,
    NO_PROFILE,
    OK,
    Converters,
    convert_batch,
)
from telemetry_ingest_service.domain.credentials import SensorCredential
from telemetry_ingest_service.domain.errors import NotStored, TokenSensorMismatch
from telemetry_ingest_service.domain.heartbeats import Heartbeats
from telemetry_ingest_service.domain.journal import Rejection
from telemetry_ingest_service.domain.spool import Spool, SpoolFull
from telemetry_ingest_service.repositories.telemetry import TelemetryRepository

_log = structlog.get_logger(__name__)

# After PostgreSQL failed, batches skip it (straight to the spool) for this long.
_SKIP_DATABASE_SECONDS = 1.0


@dataclass(frozen=True)
class Accepted:
    """The answer to an accepted batch."""

    accepted: int
    late: int = 0
    converted: int = 0
    no_profile: int = 0
    conversion_errors: int = 0
    run_id: uuid.UUID | None = None
    capture_session_id: uuid.UUID | None = None
    # Stored before (same batch_id): nothing was stored this time.
    duplicate: bool = False
    spooled: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Ingest:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        limits: Limits,
        heartbeats: Heartbeats,
        journal_size: int,
        spool: Spool,
        db_timeout: float,
    ) -> None:
        self._db = db
        self._clock = clock
        self._limits = limits
        self._heartbeats = heartbeats
        self._journal_size = journal_size
        self._spool = spool
        self._db_timeout = db_timeout
        self._converters = Converters()
        self._skip_database_until = 0.0
        self.spooled = asyncio.Event()

    async def accept(self, credential: SensorCredential, document: object) -> Accepted:
        """Checks a batch (`document`, the decoded JSON body) of the credential's sensor into a
        Batch, and stores (or spools) that; a refusal raises its domain error."""
        received_at = self._clock()
        batch = parse_batch(document, received_at=received_at, limits=self._limits)
        if batch.sensor_id != credential.sensor_id:
            raise TokenSensorMismatch()
        # Checked at the door only: a batch acknowledged from the spool is stored as it was
        # taken, whatever its sensor declares by then.
        check_channels(batch, credential.channels)
        result = await self._store_or_spool(batch)
        self._heartbeats.note(credential.sensor_id, credential.digest, received_at)
        return result

    async def _store_or_spool(self, batch: Batch) -> Accepted:
        if time.monotonic() >= self._skip_database_until:
            try:
                return await within(self._db_timeout, self.store(batch))
            except UNAVAILABLE as exc:
                _log.warning("database_unavailable", error=repr(exc))
                self._skip_database_until = time.monotonic() + _SKIP_DATABASE_SECONDS
        try:
            await self._spool.append(batch)
        except SpoolFull as exc:
            raise NotStored() from exc
        self.spooled.set()
        return Accepted(accepted=len(batch), spooled=True)

    async def drain_spool(self) -> int:
        """Stores the spooled batches, oldest first, then those a worker that is gone left in
        a sibling `worker-*` folder; returns how many. Raises one of
        backend_common.db.UNAVAILABLE (and keeps the rest) when PostgreSQL fails again."""
        self.spooled.clear()
        stored = await self._drain(self._spool)
        for directory in sorted(self._spool.directory.parent.glob("worker-*")):
            if directory == self._spool.directory:
                continue
            orphan = Spool(directory, max_bytes=0)
            try:
                orphan.open()
            except RuntimeError:
                continue  # its worker is alive and drains it
            try:
                stored += await self._drain(orphan)
            finally:
                orphan.close()
        self._skip_database_until = 0.0
        return stored

    async def _drain(self, spool: Spool) -> int:
        await spool.seal()
        stored = 0
        for segment in spool.segments():
            for batch in await spool.read(segment):
                try:
                    await within(self._db_timeout, self.store(batch, replay=True))
                except UNAVAILABLE:
                    raise
                except Exception:
                    _log.exception("spooled_batch_not_storable", ingest_key=str(batch.ingest_key))
                    await spool.set_aside(batch)
                stored += 1
            await spool.remove(segment)
        return stored

    async def store(self, batch: Batch, *, replay: bool = False) -> Accepted:
        """Stores the batch in one transaction. A replayed batch (acknowledged from the spool)
        that can no longer be attached as asked is stored unattached rather than lost."""
        first, last = min(batch.timestamps), max(batch.timestamps)
        async with self._db.transaction() as conn:
            repo = TelemetryRepository(conn)
            await repo.share_timeline(batch.sensor_id)
            context = await repo.context(batch, first, last)
            if context.stored:
                return Accepted(accepted=len(batch), duplicate=True)
            try:
                attached = attach(
                    context.bindings, run_id=batch.run_id, session_id=batch.capture_session_id
                )
            except DomainError:
                if not replay:
                    raise
                attached = NONE
            spans = [self._converters.span(*row) for row in context.profiles]
            converted = convert_batch(batch.timestamps, batch.raw_values, spans)
            result = Accepted(
                accepted=len(batch),
                late=len(batch) if attached.late else 0,
                converted=converted.count(OK),
                no_profile=converted.count(NO_PROFILE),
                conversion_errors=converted.count(ERROR),
                run_id=attached.run_id,
                capture_session_id=attached.capture_session_id,
                spooled=replay,
            )
            batch_id = await repo.insert_batch(
                sensor_id=batch.sensor_id,
                client_batch_id=batch.client_batch_id,
                ingest_key=batch.ingest_key,
                run_id=attached.run_id,
                capture_session_id=attached.capture_session_id,
                readings=len(batch),
                first=first,
                last=last,
                received_at=batch.received_at,
                spooled=replay,
            )
            if batch_id is None:
                return Accepted(accepted=len(batch), duplicate=True)
            await repo.copy_records(
                batch_id=batch_id, batch=batch, attached=attached, converted=converted
            )
        return result

    async def journal(
        self, sensor_id: uuid.UUID, rejection: Rejection, request_id: str | None
    ) -> None:
        """Keeps a refused batch in the sensor's journal; a journal that cannot be written is
        logged, never in the way of the answer."""
        if time.monotonic() < self._skip_database_until:
            _log.warning("ingest_journal_skipped", sensor_id=str(sensor_id), code=rejection.code)
            return
        try:
            await within(self._db_timeout, self._write_journal(sensor_id, rejection, request_id))
        except Exception:
            _log.exception("ingest_journal_failed", sensor_id=str(sensor_id))

    async def _write_journal(
        self, sensor_id: uuid.UUID, rejection: Rejection, request_id: str | None
    ) -> None:
        async with self._db.connection() as conn:
            await TelemetryRepository(conn).journal(
                sensor_id, rejection, request_id=request_id, keep=self._journal_size
            )

    async def flush_heartbeats(self) -> None:
        sensors, tokens = self._heartbeats.take()
        if not sensors and not tokens:
            return
        try:
            async with self._db.transaction() as conn:
                await TelemetryRepository(conn).record_heartbeats(sensors, tokens)
        except BaseException:
            self._heartbeats.put_back(sensors, tokens)
            raise
