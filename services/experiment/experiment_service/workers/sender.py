"""One try of a webhook delivery: a signed POST to the target, through the SSRF guard.

The session's resolver is the guard: aiohttp connects only to the addresses it returns, which
it has checked, so a name cannot resolve to a public address at check time and a private one at
connect time. aiohttp does not ask the resolver about IP literals; those are checked here.
"""

import socket
import time
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult

from experiment_service.domain.errors import WebhookTargetRefused
from experiment_service.domain.webhooks.models import ClaimedDelivery
from experiment_service.domain.webhooks.signing import signature_header
from experiment_service.domain.webhooks.targets import TargetGuard

RESPONSE_BODY_LIMIT = 1024
ERROR_LIMIT = 1000
USER_AGENT = "ETP-Webhooks/1"


class RefusedAddress(OSError):
    """The guard refused what the target's name resolves to."""


class GuardedResolver(AbstractResolver):
    def __init__(self, guard: TargetGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await self._guard.addresses(host, port)
        except WebhookTargetRefused as exc:
            raise RefusedAddress(exc.errors[0]["message"] if exc.errors else str(exc)) from None
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


def guarded_session(guard: TargetGuard) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(guard), use_dns_cache=False)
    # trust_env stays off: no proxy from the environment sees (or reroutes) webhook traffic.
    return aiohttp.ClientSession(connector=connector, trust_env=False, raise_for_status=False)


@dataclass(frozen=True)
class TryResult:
    status: int | None = None
    error: str | None = None
    latency_ms: int = 0
    response_body: str | None = None
    retry_after: str | None = None


def _clean(text: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL.
    return text.replace("\x00", "\ufffd")[:limit]


async def send(
    session: aiohttp.ClientSession,
    guard: TargetGuard,
    delivery: ClaimedDelivery,
    *,
    now: datetime,
    timeout_seconds: float,
) -> TryResult:
    body = orjson.dumps(delivery.payload)
    msg_id = str(delivery.event_id)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(delivery.secrets, msg_id, timestamp, body),
        "ETP-Event-Type": delivery.event_type,
    }
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        _, host, port = guard.parse(delivery.target_url)
        if _is_literal(host):
            await guard.addresses(host, port)
        async with session.post(
            delivery.target_url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        ) as response:
            answer = await _read_start(response)
            return TryResult(
                status=response.status,
                latency_ms=elapsed(),
                response_body=_clean(answer.decode("utf-8", errors="replace"), RESPONSE_BODY_LIMIT),
                retry_after=response.headers.get("Retry-After"),
            )
    except WebhookTargetRefused as exc:
        error = f"refused: {exc.errors[0]['message'] if exc.errors else exc}"
    except TimeoutError:
        error = f"timeout: no answer within {timeout_seconds:g} s"
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, RefusedAddress):
            error = f"refused: {exc.os_error.args[0]}"
        else:
            error = f"{type(exc).__name__}: {exc}"
    except aiohttp.ClientError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return TryResult(error=_clean(error, ERROR_LIMIT), latency_ms=elapsed())


async def _read_start(response: aiohttp.ClientResponse) -> bytes:
    data = b""
    while len(data) < RESPONSE_BODY_LIMIT:
        chunk = await response.content.read(RESPONSE_BODY_LIMIT - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _is_literal(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
