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
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
import structlog
from aiohttp import web

from backend_common.auth import CALLER
from backend_common.errors import ProblemError
from backend_common.keys import DATABASE
from backend_common.repositories.idempotency import IdempotencyRepository, StoredAnswer

_log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
DEFAULT_TTL = timedelta(hours=24)


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
                body = cast(bytes, response.body)  # handlers answer JSON, never a stream
                stored = await IdempotencyRepository(conn).store(
                    user_id=user_id,
                    key=key,
                    ttl=DEFAULT_TTL,
                    answer=StoredAnswer(
                        fingerprint=fingerprint,
                        status=response.status,
                        body=_without(secrets, body) if secrets else body,
                        content_type=response.content_type,
                        location=response.headers.get("Location"),
                    ),
                )
                if not stored:
                    raise _KeyTaken()
                return response
        except Exception as exc:
            # Rolled back. An earlier request with this key may be why (it did the work first).
            stored_answer = await IdempotencyRepository(db.pool).get(user_id=user_id, key=key)
            if stored_answer is None:
                if isinstance(exc, _KeyTaken):
                    raise ProblemError(409, "conflict", "Retry the request.") from None
                raise
            return _replay(stored_answer, fingerprint)

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


def _replay(answer: StoredAnswer, fingerprint: bytes) -> web.Response:
    if answer.fingerprint != fingerprint:
        raise ProblemError(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was used for a different request; use a new key.",
        )
    headers = {REPLAY_HEADER: "true"}
    if answer.location:
        headers["Location"] = answer.location
    return web.Response(
        status=answer.status, body=answer.body, content_type=answer.content_type, headers=headers
    )


async def purge_expired(pool: Any, now: datetime | None = None) -> int:
    """Deletes answers past their time at `now` (default: the database's); how many."""
    return await IdempotencyRepository(pool).purge_expired(now)


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
