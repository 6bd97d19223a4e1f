"""What a reader may not see of what they may read.

- Under a project's `physical_only` raw-value policy its viewers see physical values only. A
  conversion profile's payload turns physical values back into raw ones exactly, so it is
  hidden (`payload: null`) from whoever may not see the sensor's raw values: in answers, in
  audit entries, and in the `conversion_profile.activated` events of such a project.
- A webhook's `target_url` often carries a secret (a token in the path or query, user info), so
  only editors and owners, who may change it anyway, read it whole; viewers get its outline
  (`scheme://host[:port]/…`). The bodies receivers answered are left out for viewers too.
"""

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from backend_common.errors import DomainError
from backend_common.rbac import Caller, Membership, NotAMember, Role, RoleTooLow
from experiment_service.domain.models import AuditEntry, ConversionProfile
from experiment_service.domain.webhooks.models import WebhookDelivery, WebhookSubscription

ELLIPSIS = "…"
WEBHOOK = "webhook"
CONVERSION_PROFILE = "conversion_profile"


@dataclass(frozen=True)
class Visibility:
    """What a member sees of what their role lets them read."""

    role: Role
    sees_raw: bool = True
    # The project's raw-value policy (its viewers see physical values only).
    physical_only: bool = False

    @classmethod
    def of(cls, membership: Membership) -> "Visibility":
        return cls(membership.role, membership.sees_raw, membership.physical_only)

    @property
    def sees_targets(self) -> bool:
        return self.role.at_least(Role.EDITOR)


async def required(
    caller: Caller,
    project_id: uuid.UUID,
    minimum: Role,
    *,
    not_found: type[DomainError] = NotAMember,
) -> Visibility:
    """Like `Caller.require`, from one membership answer, with what it lets the caller see."""
    membership = await caller.membership(project_id)
    if membership is None:
        raise not_found()
    if not membership.role.at_least(minimum):
        raise RoleTooLow(f"This needs the {minimum} role; you are {membership.role}.")
    return Visibility.of(membership)


def url_outline(url: str) -> str:
    """`scheme://host[:port]/…`: where a URL goes, without user info, path or query."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ELLIPSIS
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}/{ELLIPSIS}"


def profile(item: ConversionProfile, *, sees_raw: bool) -> ConversionProfile:
    return item if sees_raw else item.model_copy(update={"payload": None})


def subscription(item: WebhookSubscription, seen_by: Visibility) -> WebhookSubscription:
    if seen_by.sees_targets:
        return item
    return item.model_copy(update={"target_url": url_outline(item.target_url)})


def delivery(item: WebhookDelivery, seen_by: Visibility) -> WebhookDelivery:
    if seen_by.sees_targets:
        return item
    attempts = [a.model_copy(update={"response_body": None}) for a in item.attempt_log]
    return item.model_copy(update={"attempt_log": attempts})


def audit_entry(entry: AuditEntry, seen_by: Visibility) -> AuditEntry:
    """The entry without what the reader may not see of its entity."""
    if entry.entity_type == WEBHOOK and not seen_by.sees_targets:
        hide = _outline_target
    elif entry.entity_type == CONVERSION_PROFILE and not seen_by.sees_raw:
        hide = _without_payload
    else:
        return entry
    return entry.model_copy(
        update={
            "before": None if entry.before is None else hide(entry.before),
            "after": None if entry.after is None else hide(entry.after),
        }
    )


def _outline_target(values: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(values.get("target_url"), str):
        return values
    return {**values, "target_url": url_outline(values["target_url"])}


def _without_payload(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "payload": None} if "payload" in values else values
