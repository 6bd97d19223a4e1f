"""`Idempotency-Key` on creating POSTs (IETF httpapi draft semantics, DESIGN.md §4).

A keyed request runs in one transaction (`Database.unit_of_work`) that claims the key first,
then does the work, then stores the 2xx response; all of it commits together, so a stored answer
exists exactly when the effect does. A second request with the same key waits on the claim until
the first one ends, then gets the stored answer (`Idempotent-Replayed: true`) if the first
succeeded, or does the work itself if the first failed. The same key with another request is
422. Keys are scoped to the caller (another user's identical key is a different key) and kept for
`DEFAULT_TTL`. Needs the `request_idempotency` table in the service's database.
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

# Claims a new key, or one whose stored answer has expired. Waits while another transaction
# holds the same key, so concurrent duplicates run one after the other.
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
_PURGE = "DELETE FROM request_idempotency WHERE expires_at <= now()"


class _NotStored(Exception):
    """Rolls the unit of work back while still answering with `response`."""

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response


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
        try:
            async with request.app[DATABASE].unit_of_work() as conn:
                if not await conn.fetchval(_CLAIM, user_id, key, fingerprint, DEFAULT_TTL):
                    return _replay(await conn.fetchrow(_GET, user_id, key), fingerprint)
                response = await handler(request)
                if not (isinstance(response, web.Response) and 200 <= response.status < 300):
                    raise _NotStored(response)
                await conn.execute(
                    _COMPLETE,
                    user_id,
                    key,
                    response.status,
                    response.body,
                    response.content_type,
                    response.headers.get("Location"),
                )
                return response
        except _NotStored as not_stored:
            return not_stored.response

    return wrapper


def _canonical(body: bytes) -> bytes:
    """The same JSON document whatever its key order and whitespace; other bodies as they are."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


def _replay(row: Any, fingerprint: bytes) -> web.Response:
    if row["fingerprint"] != fingerprint:
        raise ProblemError(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was used for a different request; use a new key.",
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
