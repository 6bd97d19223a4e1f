"""Assertions on RFC 9457 problem+json answers, shared by the API tests of every service."""

from typing import Any

import aiohttp

PROBLEM_CONTENT_TYPE = "application/problem+json"


async def assert_problem(
    response: aiohttp.ClientResponse, status: int, code: str
) -> dict[str, Any]:
    """Checks the envelope every error shares and returns the body for case-specific checks."""
    text = await response.text()
    # Not a test module, so pytest does not rewrite these asserts: the messages carry the context.
    assert response.status == status, f"expected {status}, got {response.status}: {text}"
    assert response.content_type == PROBLEM_CONTENT_TYPE, f"{response.content_type}: {text}"
    body = await response.json(content_type=PROBLEM_CONTENT_TYPE)
    assert body["code"] == code, f"expected code {code!r}: {body}"
    assert body["status"] == status, body
    assert body["type"] == "about:blank", body
    assert body["title"], body
    request_id = response.headers.get("X-Request-Id")
    assert request_id, f"no X-Request-Id header: {dict(response.headers)}"
    assert body["request_id"] == request_id, f"header {request_id!r}, body {body}"
    return body
