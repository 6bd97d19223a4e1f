"""The experiment service's own Prometheus metrics (docs/operations.md, "Monitoring"): the
webhook outbox and its deliveries. Requests, the pool, jobs and the run-metric live streams are
counted by backend_common."""

from prometheus_client import Counter, Gauge

from backend_common.clock import Clock
from backend_common.db import Database
from backend_common.metrics import Sampler
from experiment_service.domain.webhooks import outbox

DELIVERIES = Counter(
    "etp_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: delivered, failed (to be retried), dead (no retry"
    " left, or the receiver said 410), superseded (the lease was lost meanwhile).",
    ["outcome"],
)
OUTBOX_BACKLOG = Gauge(
    "etp_outbox_backlog",
    "Webhook deliveries not yet made (pending, waiting for a retry, or being sent).",
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_DUE = Gauge(
    "etp_outbox_oldest_due_seconds",
    "How long the webhook delivery due longest has been waiting (0: none is due).",
    multiprocess_mode="mostrecent",
)
for _outcome in ("delivered", "failed", "dead", "superseded"):
    DELIVERIES.labels(_outcome)  # at 0 before the first one


def delivery_attempted(outcome: str) -> None:
    DELIVERIES.labels(outcome).inc()


def outbox_sampler(db: Database, clock: Clock) -> Sampler:
    async def sample_outbox() -> None:
        async with db.connection() as conn:
            pending, oldest_due = await outbox.backlog(conn, now=clock())
        OUTBOX_BACKLOG.set(pending)
        OUTBOX_OLDEST_DUE.set(oldest_due.total_seconds())

    return sample_outbox
