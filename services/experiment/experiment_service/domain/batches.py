"""One change to many items (runs, experiments) at once, all or nothing.

Each item's role is checked first (an HTTP call maybe, so before any lock), then the items are
locked in id order (concurrent batches cannot deadlock), each is planned (a rule it breaks is its
failure), and only when none failed and the webhook fan-out fits is every change written, each
with its own audit row. The failures name each item with the error its own request would get.
"""

import uuid
from collections.abc import Sequence
from typing import Protocol, TypeVar

import asyncpg

from backend_common.db import Database
from backend_common.errors import DomainError
from backend_common.rbac import Caller, Role
from experiment_service.domain.errors import BatchFailed
from experiment_service.domain.webhooks.outbox import check_fan_out

T = TypeVar("T")
P = TypeVar("P")


class BatchChange(Protocol[T, P]):
    """How a batch reads, checks, plans and writes one kind of item (`T`) with its plan (`P`)."""

    @property
    def item(self) -> str:
        """The kind of item ("run", "experiment"): names the failures' ids."""
        ...

    async def read(
        self, conn: asyncpg.Connection, ids: list[uuid.UUID], *, for_update: bool
    ) -> dict[uuid.UUID, T]: ...

    async def role(self, caller: Caller, found: T | None) -> Role:
        """The caller's role on the item; raises its not-found or role error."""
        ...

    def not_found(self) -> DomainError: ...

    async def plan(self, conn: asyncpg.Connection, found: T) -> P:
        """What the item takes; raises the DomainError of a rule it breaks."""
        ...

    def fan_out(self, found: T, plan: P) -> list[tuple[uuid.UUID, str]]:
        """(project, webhook event type) of each event the change would emit."""
        ...

    async def write(
        self, conn: asyncpg.Connection, caller: Caller, role: Role, found: T, plan: P
    ) -> T: ...


async def change_all(
    db: Database,
    caller: Caller,
    ids: Sequence[uuid.UUID],
    change: BatchChange[T, P],
    *,
    max_fan_out: int,
) -> list[T]:
    """Every item changed, in the order of its first id; or BatchFailed and nothing changed."""
    ordered_ids = list(dict.fromkeys(ids))
    failures: dict[uuid.UUID, DomainError] = {}
    roles: dict[uuid.UUID, Role] = {}
    async with db.connection() as conn:
        seen = await change.read(conn, ordered_ids, for_update=False)
    for item_id in ordered_ids:
        try:
            roles[item_id] = await change.role(caller, seen.get(item_id))
        except DomainError as exc:
            failures[item_id] = exc
    async with db.transaction() as conn:
        found = await change.read(conn, list(roles), for_update=True)
        planned: list[tuple[T, Role, P]] = []
        for item_id, role in roles.items():
            try:
                item = found.get(item_id)
                if item is None:
                    raise change.not_found()
                planned.append((item, role, await change.plan(conn, item)))
            except DomainError as exc:
                failures[item_id] = exc
        if failures:
            raise BatchFailed(
                [(item_id, failures[item_id]) for item_id in ordered_ids if item_id in failures],
                item=change.item,
            )
        await check_fan_out(
            conn,
            [event for item, _, plan in planned for event in change.fan_out(item, plan)],
            limit=max_fan_out,
        )
        return [await change.write(conn, caller, role, item, plan) for item, role, plan in planned]


def merged_tags(
    tags: list[str], *, add: list[str], remove: list[str], set_: list[str] | None
) -> list[str]:
    """The tags after a bulk change: `set_` replaces them; else `remove` goes, then `add` is
    appended where missing. Order kept, no tag twice."""
    if set_ is not None:
        return list(dict.fromkeys(set_))
    kept = [tag for tag in tags if tag not in set(remove)]
    return list(dict.fromkeys([*kept, *add]))
