import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from experiment_service.domain.webhooks.policy import DeliveryStatus


class WebhookSubscription(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    target_url: str
    event_types: list[str]
    active: bool
    disabled_reason: str | None
    description: str
    # While the previous secret still signs too (after a rotation with a grace period).
    previous_secret_expires_at: datetime | None
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime


class WebhookSubscriptionWithSecret(WebhookSubscription):
    """The answer to creation and rotation: the only time the secret is shown."""

    secret: str


class WebhookAttempt(BaseModel):
    attempt: int
    started_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: int
    response_body: str | None
    superseded: bool


class WebhookDelivery(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    subscription_id: uuid.UUID
    project_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attempt_log: list[WebhookAttempt]


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery a dispatcher holds the lease of, with what it needs to send it."""

    id: uuid.UUID
    lease_token: uuid.UUID
    attempt: int
    event_id: uuid.UUID
    event_type: str
    payload: dict[str, Any]
    subscription_id: uuid.UUID
    target_url: str
    secrets: list[str]
