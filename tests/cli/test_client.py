"""The HTTP layer on its own (httpx's mock transport): problems, exit codes, retries."""

import json

import httpx
import pytest

from etp.client import Client, problem_of, retry_after_seconds
from etp.errors import ApiError, ExitCode, exit_code_for


def _client(handler, **options) -> tuple[Client, list[float]]:
    waits: list[float] = []
    client = Client(
        "http://etp.test/",
        "etpk_1_secret",
        transport=httpx.MockTransport(handler),
        sleep=waits.append,
        **options,
    )
    return client, waits


def _problem(status: int, code: str, **extra) -> httpx.Response:
    body = {"type": "about:blank", "title": "x", "status": status, "code": code, **extra}
    return httpx.Response(
        status,
        json=body,
        headers={"Content-Type": "application/problem+json", "X-Request-Id": "hdr"},
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (None, ExitCode.UNAVAILABLE),
        (400, ExitCode.OTHER),
        (401, ExitCode.AUTH),
        (403, ExitCode.AUTH),
        (404, ExitCode.NOT_FOUND),
        (409, ExitCode.CONFLICT),
        (412, ExitCode.CONFLICT),
        (422, ExitCode.OTHER),
        (429, ExitCode.UNAVAILABLE),
        (500, ExitCode.UNAVAILABLE),
        (503, ExitCode.UNAVAILABLE),
    ],
)
def test_exit_codes(status, code):
    assert exit_code_for(status) is code


def test_sends_the_key_and_json_and_reads_json():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "p1"})

    client, _ = _client(handler)
    assert client.post("/api/v1/projects", {"name": "a"}) == {"id": "p1"}
    (request,) = seen
    assert request.url == "http://etp.test/api/v1/projects"
    assert request.headers["Authorization"] == "Bearer etpk_1_secret"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"]
    assert json.loads(request.content) == {"name": "a"}


def test_a_problem_becomes_an_api_error_with_the_request_id():
    client, _ = _client(lambda r: _problem(404, "run_not_found", detail="no run", request_id="rid"))
    with pytest.raises(ApiError) as caught:
        client.get("/api/v1/runs/x")
    error = caught.value
    assert (error.status, error.code, error.detail, error.request_id) == (
        404,
        "run_not_found",
        "no run",
        "rid",
    )
    assert error.exit_code is ExitCode.NOT_FOUND
    assert "rid" in str(error)


def test_the_request_id_comes_from_the_header_when_the_body_has_none():
    error = problem_of(httpx.Response(502, text="bad gateway", headers={"X-Request-Id": "h1"}))
    assert (error.code, error.detail, error.request_id) == ("http_502", "bad gateway", "h1")


def test_429_and_503_are_retried_after_retry_after():
    answers = iter(
        [
            httpx.Response(429, json={"code": "too_many_requests"}, headers={"Retry-After": "2"}),
            httpx.Response(503, json={"code": "unavailable"}),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    client, waits = _client(lambda r: next(answers))
    assert client.get("/x") == {"ok": True}
    assert waits == [2.0, 0.5]


def test_a_wait_longer_than_max_wait_is_not_waited():
    client, waits = _client(
        lambda r: httpx.Response(
            429, json={"code": "too_many_requests"}, headers={"Retry-After": "99"}
        ),
        max_wait=10,
    )
    with pytest.raises(ApiError) as caught:
        client.get("/x")
    assert (caught.value.status, caught.value.retry_after, waits) == (429, 99.0, [])


def test_retries_are_bounded():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(503, headers={"Retry-After": "0"})

    client, _ = _client(handler, max_retries=3)
    with pytest.raises(ApiError) as caught:
        client.get("/x")
    assert (len(calls), caught.value.exit_code) == (4, ExitCode.UNAVAILABLE)


def test_a_refused_connection_is_retried_then_reported():
    calls = []

    def handler(request):
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    client, waits = _client(handler, connect_retries=2)
    with pytest.raises(ApiError) as caught:
        client.post("/x", {})
    assert (caught.value.status, caught.value.code) == (None, "unreachable")
    assert caught.value.exit_code is ExitCode.UNAVAILABLE
    assert (len(calls), waits) == (3, [0.25, 0.5])


def test_a_post_keeps_its_idempotency_key_across_retries():
    keys = []

    def handler(request):
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            raise httpx.ReadError("reset", request=request)
        return httpx.Response(201, json={})

    client, _ = _client(handler)
    client.post("/x", {})
    assert len(keys) == 2
    assert keys[0] == keys[1]


def test_a_streamed_body_is_sent_once():
    calls = []

    def handler(request):
        calls.append(request.read())
        return httpx.Response(503)

    client, _ = _client(handler)
    with pytest.raises(ApiError), client.stream("POST", "/x", content=iter([b"a", b"b"])):
        pass
    assert calls == [b"ab"]


def test_paginate_follows_the_cursor():
    pages = {
        None: {"items": [1, 2], "next_cursor": "c2"},
        "c2": {"items": [3], "next_cursor": None},
    }
    client, _ = _client(lambda r: httpx.Response(200, json=pages[r.url.params.get("cursor")]))
    assert list(client.paginate("/l")) == [1, 2, 3]
    assert list(client.paginate("/l", limit=1)) == [1]


def test_retry_after_as_a_date():
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:05 GMT", now=lambda: now) == 5.0
    assert retry_after_seconds("soon") is None
