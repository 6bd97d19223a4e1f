"""`Idempotency-Key` on creating POSTs, with the semantics of the IETF httpapi Idempotency-Key
draft.

A keyed request does its work and stores its 2xx response under the key in one transaction
(`Database.unit_of_work`), so a stored answer exists exactly when the effect does. When the key
is already taken (a concurrent duplicate waits on the key's row until the first commits), the
work is rolled back and the stored answer is replayed with `Idempotent-Replayed: true`; so is it
when the request fails because the first one already did the work (e.g. an invalid transition).
The same key with another request is 422. Keys are scoped to the caller (another user's identical
key is a different key) and kept for `DEFAULT_TTL`. Needs the `request_idempotency` table.
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

# Stores the answer under a new key, or over one that has expired; returns nothing when the key
# holds a live answer. Waits while another transaction holds the same key.
_STORE = """
    INSERT INTO request_idempotency
        (user_id, key, fingerprint, expires_at, status, body, content_type, location)
    VALUES ($1, $2, $3, now() + $4::interval, $5, $6, $7, $8)
    ON CONFLICT (user_id, key) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, expires_at = EXCLUDED.expires_at,
            status = EXCLUDED.status, body = EXCLUDED.body,
            content_type = EXCLUDED.content_type, location = EXCLUDED.location,
            created_at = now()
        WHERE request_idempotency.expires_at <= now()
    RETURNING true
"""
_GET = """
    SELECT fingerprint, status, body, content_type, location
    FROM request_idempotency WHERE user_id = $1 AND key = $2 AND expires_at > now()
"""
_PURGE = "DELETE FROM request_idempotency WHERE expires_at <= now()"


class _KeyTaken(Exception):
    """Rolls the unit of work back: the key already holds an answer."""


def idempotent(handler: Any = None, *, secrets: tuple[str, ...] = ()) -> Any:
    """Decorates a creating POST handler (the caller must be authenticated).

    `@idempotent(secrets=("token",))` stores the answer with those top-level fields set to null:
    a secret shown once is never written down, so a replay does not show it again.
    """
    if handler is None:
        return functools.partial(idempotent, secrets=secrets)

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
        db = request.app[DATABASE]
        try:
            async with db.unit_of_work() as conn:
                response = await handler(request)
                if not (isinstance(response, web.Response) and 200 <= response.status < 300):
                    return response
                stored = await conn.fetchval(
                    _STORE,
                    user_id,
                    key,
                    fingerprint,
                    DEFAULT_TTL,
                    response.status,
                    _without(secrets, response.body) if secrets else response.body,
                    response.content_type,
                    response.headers.get("Location"),
                )
                if not stored:
                    raise _KeyTaken()
                return response
        except Exception as exc:
            # Rolled back. An earlier request with this key may be why (it did the work first).
            row = await db.pool.fetchrow(_GET, user_id, key)
            if row is None:
                if isinstance(exc, _KeyTaken):
                    raise ProblemError(409, "conflict", "Retry the request.") from None
                raise
            return _replay(row, fingerprint)

    return wrapper


def _without(secrets: tuple[str, ...], body: Any) -> bytes:
    document = orjson.loads(body)
    return orjson.dumps({**document, **{key: None for key in secrets if key in document}})


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
