"""Webhook test helpers: receivers on testsuite's mockserver, subscriptions, an independent
Standard Webhooks signature check, and what the database holds about deliveries.

hook = receiver("ci")                       # a URL on the mockserver that records each request
sub = await subscribe(client, editor, project_id, hook.url, ["run.started"])
calls = await hook.wait_for(1)
assert signature_ok(sub["secret"], calls[0])
"""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.experiment.factories import expect

HOOKS = "/api/v1/webhooks"


def hook_url(webhook_id: Any) -> str:
    return f"{HOOKS}/{webhook_id}"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event_type(self) -> str:
        return self.json["type"]


# An answer: a status, or a coroutine function of the request giving the mockserver response.
Answer = int | Callable[[Received], Awaitable[Any]]


@dataclass
class Receiver:
    """A webhook target on the mockserver. It answers each request with the next entry of
    `answers` (the last one repeats; 200 when empty) and records it."""

    mockserver: Any
    url: str
    answers: list[Answer] = field(default_factory=list)
    calls: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Any) -> Any:
        call = Received(
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.get_data(),
            at=time.monotonic(),
        )
        self.calls.append(call)
        self._arrived.set()
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1] if self.answers else 200
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if isinstance(answer, int):
                return self.mockserver.make_response("ok", status=answer)
            return await answer(call)
        finally:
            self.in_flight -= 1

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        """The first `count` requests, once they have arrived."""
        deadline = time.monotonic() + within
        while len(self.calls) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"expected {count} requests, got {len(self.calls)}"
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return self.calls[:count]

    @property
    def events(self) -> list[Received]:
        """The requests, one per event id (the first of each): delivery is at least once, and a
        test that moves the clock past a delivery's lease may see an event twice."""
        first: dict[str, Received] = {}
        for call in self.calls:
            first.setdefault(call.event_id, call)
        return list(first.values())

    async def wait_for_events(self, count: int, within: float = 10.0) -> list[Received]:
        """The first `count` distinct events, once they have arrived."""
        deadline = time.monotonic() + within
        while len(self.events) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"expected {count} events, got {len(self.events)}"
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return self.events[:count]

    async def stays_at(self, count: int, wait: float = 0.5) -> None:
        """Asserts that no request beyond `count` arrives within `wait` seconds."""
        await asyncio.sleep(wait)
        assert len(self.calls) == count, [c.event_type for c in self.calls]


def signature_ok(secret: str, call: Received) -> bool:
    """Checks webhook-signature as a receiver would (Standard Webhooks), independently of the
    service's code: any of the space-separated `v1,` signatures may match."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{call.headers['webhook-id']}.{call.headers['webhook-timestamp']}.".encode()
    expected = base64.b64encode(hmac.new(key, signed + call.body, hashlib.sha256).digest())
    return any(
        hmac.compare_digest(expected, candidate.removeprefix("v1,").encode())
        for candidate in call.headers["webhook-signature"].split()
    )


async def subscribe(
    client: Any,
    user: Any,
    project_id: Any,
    url: str,
    event_types: list[str] | None = None,
    *,
    status: int = 201,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "project_id": str(project_id),
        "target_url": url,
        "event_types": event_types or ["*"],
        **extra,
    }
    return await expect(await client.post(HOOKS, json=body, headers=user.headers), status)


async def deliveries(client: Any, user: Any, webhook_id: Any, **params: Any) -> list[dict]:
    page = await expect(
        await client.get(
            f"{hook_url(webhook_id)}/deliveries",
            params={"limit": "500", **params},
            headers=user.headers,
        ),
        200,
    )
    return page["items"]


def delivery_rows(pgsql: Any, where: str = "true", params: tuple = ()) -> list[dict[str, Any]]:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT d.id::text, d.event_id::text, e.type, d.status, d.attempts,"
            " d.next_attempt_at, d.last_attempt_at, d.last_status, d.lease_token::text,"
            " d.subscription_id::text"
            " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"
            f" WHERE {where} ORDER BY d.created_at, d.id",
            params,
        )
        return [dict(row) for row in cursor]


def count_rows(pgsql: Any, table: str) -> int:
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def new_name() -> str:
    return uuid.uuid4().hex[:10]
