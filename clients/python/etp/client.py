"""The one HTTP layer of the package: ETP's public API (through the gateway) on httpx.

`Client` sends `Authorization: Bearer <api key>`, JSON in and out, turns every error answer
(RFC 9457 problem+json) into `ApiError` (status, code, detail, request_id, and the exit code the
CLI ends with), and retries what is safe to retry:

- 429 and 503 honouring `Retry-After` (a wait longer than `max_wait` is not waited: the error
  is raised at once), at most `max_retries` times, when the body can be sent again;
- a connection that could not be opened (nothing was sent), and, for requests that are safe to
  repeat (GET/HEAD/PUT/DELETE, or a POST with an `Idempotency-Key`), a connection lost before the
  answer, at most `connect_retries` times with a short backoff.

Every POST carries an `Idempotency-Key` (a fresh one unless the caller gives one), so a creating
POST repeated after a lost answer is answered once. A streamed body given as an iterator is sent
once; given as a callable that returns a fresh iterator (e.g. one that reads a file from its
start), it is sent again on a retry.
"""

import email.utils
import json as jsonlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from importlib import metadata
from types import TracebackType
from typing import Any, Self

import httpx

from etp.config import Config, load_config
from etp.errors import ApiError

__all__ = ["ApiError", "Client"]

RETRIED_STATUSES = frozenset({429, 503})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
IDEMPOTENCY_HEADER = "Idempotency-Key"

Params = Mapping[str, str | int | float | bool | list[str] | None]
Body = bytes | str | Iterable[bytes] | Callable[[], Iterable[bytes]] | None


def _version() -> str:
    try:
        return metadata.version("etp-client")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source checkout
        return "0"


def retry_after_seconds(
    value: str | None, now: Callable[[], datetime] | None = None
) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = now() if now else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def problem_of(response: httpx.Response) -> ApiError:
    """The `ApiError` an error answer stands for (its body must have been read)."""
    body: Any = None
    with suppress(ValueError):
        body = response.json()
    problem: dict[str, Any] = body if isinstance(body, dict) else {}
    code = problem.get("code")
    detail = problem.get("detail") or problem.get("title")
    if not isinstance(detail, str) or not detail:
        text = response.text.strip()
        detail = text[:300] if text else response.reason_phrase or f"HTTP {response.status_code}"
    request_id = problem.get("request_id") or response.headers.get("X-Request-Id")
    errors = problem.get("errors")
    return ApiError(
        response.status_code,
        code if isinstance(code, str) and code else f"http_{response.status_code}",
        detail,
        request_id=request_id if isinstance(request_id, str) else None,
        errors=errors if isinstance(errors, list) else None,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


def _clean(params: Params | None) -> dict[str, Any] | None:
    if params is None:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


class Client:
    """A synchronous client of the public API. Thread-safe (one httpx connection pool).

    `api_key` is sent as the bearer token: an API key, or an access token (the commands that
    need a password sign-in use one); None sends no credentials (registration, login)."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 5,
        max_wait: float = 30.0,
        connect_retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.connect_retries = connect_retries
        self.backoff = backoff
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.url,
            headers={
                **({"Authorization": f"Bearer {api_key}"} if api_key else {}),
                "Accept": "application/json, application/problem+json",
                "User-Agent": f"etp-client/{_version()}",
            },
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_config(cls, config: Config | None = None, **options: Any) -> Self:
        """A client for `config`, else for `load_config()` (arguments, env, the stored file)."""
        config = config or load_config()
        return cls(config.url, config.api_key, **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- JSON calls --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content: Body = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Sends one request (with the retries above) and returns the answer's JSON (None for an
        empty answer); raises `ApiError` for an error answer or no answer."""
        response = self._send(
            method, path, params, json, content, headers, idempotency_key, stream=False
        )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                response.status_code,
                "invalid_answer",
                f"the answer is not JSON: {response.text[:200]!r}",
                request_id=response.headers.get("X-Request-Id"),
            ) from exc

    def get(self, path: str, params: Params | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(
        self,
        path: str,
        json: Any = None,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        return self.request(
            "POST",
            path,
            params=params,
            json=json,
            headers=headers,
            idempotency_key=idempotency_key,
        )

    def patch(self, path: str, json: Any, *, headers: Mapping[str, str] | None = None) -> Any:
        return self.request("PATCH", path, json=json, headers=headers)

    def put(self, path: str, json: Any, *, headers: Mapping[str, str] | None = None) -> Any:
        return self.request("PUT", path, json=json, headers=headers)

    def delete(self, path: str, params: Params | None = None) -> Any:
        return self.request("DELETE", path, params=params)

    def paginate(
        self, path: str, params: Params | None = None, *, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The items of a keyset-paged list (`items`, `next_cursor`), page after page; at most
        `limit` items when given."""
        query: dict[str, Any] = dict(_clean(params) or {})
        seen = 0
        while True:
            if limit is not None:
                query["limit"] = min(500, max(1, limit - seen))
            page = self.get(path, query)
            for item in page.get("items", []):
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return
            query["cursor"] = cursor

    # -- streams -----------------------------------------------------------------------------

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        content: Body = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        idempotency_key: str | None = None,
    ) -> Iterator[httpx.Response]:
        """A streamed answer (downloads, server-sent events) or a streamed body (uploads);
        an error answer raises `ApiError` before the body is handed out."""
        response = self._send(
            method,
            path,
            params,
            None,
            content,
            headers,
            idempotency_key,
            stream=True,
            timeout=timeout,
        )
        try:
            yield response
        finally:
            response.close()

    # -- the retrying core -------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        params: Params | None,
        json: Any,
        content: Body,
        headers: Mapping[str, str] | None,
        idempotency_key: str | None,
        *,
        stream: bool,
        timeout: float | httpx.Timeout | None = None,
    ) -> httpx.Response:
        method = method.upper()
        all_headers = dict(headers or {})
        if json is not None:
            content = jsonlib.dumps(json, separators=(",", ":")).encode()
            all_headers.setdefault("Content-Type", "application/json")
        if method == "POST":
            all_headers.setdefault(IDEMPOTENCY_HEADER, idempotency_key or uuid.uuid4().hex)
        replayable_body = content is None or isinstance(content, bytes | str) or callable(content)
        repeatable = method in _SAFE_METHODS or IDEMPOTENCY_HEADER in all_headers

        def build() -> httpx.Request:
            body = content() if callable(content) else content
            return self._http.build_request(
                method,
                path,
                params=_clean(params),
                content=body,
                headers=all_headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )

        refused = lost = 0
        while True:
            request = build()
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                connect = isinstance(exc, _CONNECT_ERRORS)
                if replayable_body and (connect or repeatable) and lost < self.connect_retries:
                    self._sleep(self.backoff * 2**lost)
                    lost += 1
                    continue
                raise ApiError(
                    None, "unreachable", f"no answer from {self.url}: {exc or type(exc).__name__}"
                ) from exc
            if response.is_success:
                return response
            response.read()
            error = problem_of(response)
            response.close()
            if (
                response.status_code in RETRIED_STATUSES
                and replayable_body
                and refused < self.max_retries
            ):
                wait = error.retry_after
                if wait is None:
                    wait = self.backoff * 2**refused
                if wait <= self.max_wait:
                    self._sleep(wait)
                    refused += 1
                    continue
            raise error
