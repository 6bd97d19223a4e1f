"""`Idempotency-Key` on creating POSTs (IETF httpapi draft semantics, DESIGN.md §4).

The first request with a key claims it; its 2xx response is stored and replayed to every later
request with the same key and body from the same user for `ttl`. The same key with another body
is 422; a retry while the first is still running is 409. A request that fails releases its key,
so the client may retry it. Keys are scoped to the caller: another user's identical key is a
different key. Needs the `request_idempotency` table in the service's database.
"""

import asyncio
import contextlib
import functools
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import structlog
from aiohttp import web

from backend_common.auth import CALLER
from backend_common.errors import ProblemError
from backend_common.keys import DATABASE

_log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
DEFAULT_TTL = timedelta(hours=24)

# Claims a new key, or one whose stored answer has expired.
_CLAIM = """
    INSERT INTO request_idempotency (user_id, key, fingerprint, expires_at)
    VALUES ($1, $2, $3, now() + $4::interval)
    ON CONFLICT (user_id, key) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, expires_at = EXCLUDED.expires_at,
            status = NULL, body = NULL, content_type = NULL, location = NULL, created_at = now()
        WHERE request_idempotency.expires_at <= now()
    RETURNING true
"""
_GET = """
    SELECT fingerprint, status, body, content_type, location
    FROM request_idempotency WHERE user_id = $1 AND key = $2
"""
_COMPLETE = """
    UPDATE request_idempotency SET status = $3, body = $4, content_type = $5, location = $6
    WHERE user_id = $1 AND key = $2
"""
_RELEASE = "DELETE FROM request_idempotency WHERE user_id = $1 AND key = $2 AND status IS NULL"
_PURGE = "DELETE FROM request_idempotency WHERE expires_at <= now()"


def idempotent(handler: Any) -> Any:
    """Decorates a creating POST handler (the caller must be authenticated)."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        key = request.headers.get(HEADER)
        if key is None:
            return await handler(request)
        if not _VALID_KEY.fullmatch(key):
            raise ProblemError(
                400, "invalid_idempotency_key", f"{HEADER} must be 1-255 printable characters."
            )
        user_id = request[CALLER].user_id
        fingerprint = hashlib.sha256(
            b"\n".join(
                [
                    request.method.encode(),
                    request.path_qs.encode(),
                    _canonical(await request.read()),
                ]
            )
        ).digest()
        pool = request.app[DATABASE].pool
        if not await pool.fetchval(_CLAIM, user_id, key, fingerprint, DEFAULT_TTL):
            return await _replay(pool, user_id, key, fingerprint)
        try:
            response = await handler(request)
        except BaseException:
            await pool.execute(_RELEASE, user_id, key)
            raise
        if isinstance(response, web.Response) and 200 <= response.status < 300:
            await pool.execute(
                _COMPLETE,
                user_id,
                key,
                response.status,
                response.body,
                response.content_type,
                response.headers.get("Location"),
            )
        else:
            await pool.execute(_RELEASE, user_id, key)
        return response

    return wrapper


def _canonical(body: bytes) -> bytes:
    """The same JSON document whatever its key order and whitespace; other bodies as they are."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


async def _replay(pool: Any, user_id: Any, key: str, fingerprint: bytes) -> web.Response:
    row = await pool.fetchrow(_GET, user_id, key)
    if row is not None and row["fingerprint"] != fingerprint:
        raise ProblemError(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was used for a different request; use a new key.",
        )
    if row is None or row["status"] is None:
        raise ProblemError(
            409,
            "idempotency_request_in_flight",
            f"A request with this {HEADER} is still being processed; retry later.",
            headers={"Retry-After": "1"},
        )
    headers = {REPLAY_HEADER: "true"}
    if row["location"]:
        headers["Location"] = row["location"]
    return web.Response(
        status=row["status"], body=row["body"], content_type=row["content_type"], headers=headers
    )


async def purge_expired(pool: Any) -> int:
    """Deletes answers past their time; returns how many."""
    result = await pool.execute(_PURGE)
    return int(result.split()[-1])


PURGE_INTERVAL = 3600.0


async def purge_expired_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: deletes expired answers every hour while the app runs."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            try:
                purged = await purge_expired(app[DATABASE].pool)
                _log.info("idempotency_keys_purged", count=purged)
            except Exception:
                _log.exception("idempotency_purge_failed")

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
