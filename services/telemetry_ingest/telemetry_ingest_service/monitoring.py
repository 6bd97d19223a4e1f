"""The telemetry service's own Prometheus metrics (docs/operations.md, "Monitoring"): what
became of each batch, the spool and the rollup. Requests, the pool, the sensors' rate limit and
the live streams are counted by backend_common."""

from prometheus_client import Counter, Gauge

from backend_common.metrics import Sampler
from telemetry_ingest_service.domain.ingest import Accepted
from telemetry_ingest_service.domain.rollup import Rollup
from telemetry_ingest_service.domain.spool import Spool

STORED, SPOOLED, DUPLICATE, REFUSED = "stored", "spooled", "duplicate", "refused"

BATCHES = Counter(
    "etp_ingest_batches_total",
    "Telemetry batches by outcome (stored, spooled, duplicate, refused) and, for refused ones,"
    " the problem code that answered them.",
    ["outcome", "reason"],
)
POINTS = Counter(
    "etp_ingest_points_total",
    "Readings acknowledged, stored at once or spooled (a duplicate batch's are not counted).",
    ["outcome"],
)
LATE_READINGS = Counter(
    "etp_ingest_late_readings_total",
    "Readings stored late: for a run or capture session that had already ended.",
)
SPOOL_BYTES = Gauge(
    "etp_spool_bytes",
    "Bytes of acknowledged batches waiting in the spool for PostgreSQL.",
    multiprocess_mode="livesum",
)
SPOOL_CAPACITY = Gauge(
    "etp_spool_capacity_bytes",
    "The spool's bound (SPOOL_MAX_BYTES): past it, batches are refused with 503.",
    multiprocess_mode="livesum",
)
SPOOL_OLDEST_AGE = Gauge(
    "etp_spool_oldest_segment_age_seconds",
    "Age of the oldest spool segment not yet stored (0: the spool is empty).",
    multiprocess_mode="livemax",
)
SPOOL_REPLAYED = Counter(
    "etp_spool_replayed_batches_total",
    "Spooled batches stored in PostgreSQL once it was back.",
)
ROLLUP_LAG = Gauge(
    "etp_rollup_lag_seconds",
    "How long the oldest queued minute's rollup has been owed (0: none is queued).",
    multiprocess_mode="mostrecent",
)
ROLLUP_PENDING = Gauge(
    "etp_rollup_pending_ranges",
    "Queued ranges of minutes whose rollup is to be recomputed.",
    multiprocess_mode="mostrecent",
)
for _outcome in (STORED, SPOOLED, DUPLICATE):  # at 0 before the first batch
    BATCHES.labels(_outcome, "")
for _outcome in (STORED, SPOOLED):
    POINTS.labels(_outcome)


def batch_accepted(result: Accepted) -> None:
    outcome = DUPLICATE if result.duplicate else SPOOLED if result.spooled else STORED
    BATCHES.labels(outcome, "").inc()
    if not result.duplicate:
        POINTS.labels(outcome).inc(result.accepted)
        LATE_READINGS.inc(result.late)


def batch_refused(code: str) -> None:
    BATCHES.labels(REFUSED, code).inc()


def spool_sampler(spool: Spool) -> Sampler:
    def sample_spool() -> None:
        SPOOL_BYTES.set(spool.size)
        SPOOL_CAPACITY.set(spool.max_bytes)
        SPOOL_OLDEST_AGE.set(spool.oldest_age())

    return sample_spool


def rollup_sampler(rollup: Rollup) -> Sampler:
    async def sample_rollup() -> None:
        ranges, lag = await rollup.lag()
        ROLLUP_PENDING.set(ranges)
        ROLLUP_LAG.set(lag.total_seconds())

    return sample_rollup
