"""The check every API test's answers go through (tests/plugins/spec_answers.py) finds what its
document does not allow."""

import json
import uuid
from typing import Any

import pytest
from multidict import CIMultiDict

from backend_common.paths import OPENAPI_ROOT
from tests.plugins.spec_answers import Exchange, document, problems_of

EXPERIMENT = document(OPENAPI_ROOT / "experiment.yaml")
EXAMPLE = EXPERIMENT.spec["components"]["examples"]["Experiment"]["value"]
BEARER = {"Authorization": "Bearer eyJhbGciOiJFZERTQSJ9.e30.c2ln"}
PROBLEM = {
    "type": "about:blank",
    "title": "Not Found",
    "status": 404,
    "code": "not_found",
    "request_id": "3f6c2a9e0b8d4e1f9a7c5b3d2e1f0a9b",
}


def exchange(
    method: str,
    path: str,
    status: int,
    body: Any,
    *,
    media_type: str = "application/json",
    query: list[tuple[str, str]] | None = None,
    request_body: Any = None,
) -> Exchange:
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request_headers = dict(BEARER)
    if request_body is not None:
        request_headers["Content-Type"] = "application/json"
    return Exchange(
        method=method,
        path=path,
        query=query or [],
        request_headers=request_headers,
        request_body=None if request_body is None else json.dumps(request_body).encode(),
        status=status,
        headers=CIMultiDict({"Content-Type": media_type}),
        body=raw,
    )


def experiment_path() -> str:
    return f"/api/v1/experiments/{uuid.uuid4()}"


def test_an_answer_as_documented_passes():
    assert problems_of(EXPERIMENT, exchange("GET", experiment_path(), 200, EXAMPLE)) == []


@pytest.mark.parametrize(
    "change",
    [
        {"owner": EXAMPLE["owner_id"], "owner_id": None},  # renamed
        {"status": "paused"},  # not in the enum
        {"tags": "aero"},  # a string, not a list
        {"created_at": "yesterday"},  # not a date-time
    ],
)
def test_a_wrong_field_is_found(change):
    body = {key: value for key, value in {**EXAMPLE, **change}.items() if value is not None}

    problems = problems_of(EXPERIMENT, exchange("GET", experiment_path(), 200, body))

    assert problems != []


def test_an_error_that_is_not_a_problem_is_found():
    problems = problems_of(
        EXPERIMENT, exchange("GET", experiment_path(), 404, {"error": "no such experiment"})
    )

    assert problems != []


def test_an_undocumented_status_is_found():
    assert problems_of(EXPERIMENT, exchange("GET", experiment_path(), 418, PROBLEM)) != []


def test_an_undocumented_route_may_only_answer_a_problem():
    ok = exchange("GET", "/api/v1/nothing", 404, PROBLEM, media_type="application/problem+json")
    success = exchange("GET", "/api/v1/nothing", 200, {})
    not_a_problem = exchange("GET", "/api/v1/nothing", 404, {"code": "not_found"})

    assert problems_of(EXPERIMENT, ok) == []
    assert problems_of(EXPERIMENT, success) != []
    assert problems_of(EXPERIMENT, not_a_problem) != []


def test_a_request_the_service_took_must_be_documented():
    created = exchange(
        "POST",
        "/api/v1/experiments",
        201,
        EXAMPLE,
        request_body={"project_id": EXAMPLE["project_id"], "name": "x", "colour": "red"},
    )

    assert any(problem.startswith("request:") for problem in problems_of(EXPERIMENT, created))


def test_a_streamed_answer_is_checked_for_its_media_type():
    csv = exchange("GET", "/api/v1/runs/export", 200, None, media_type="text/csv")
    plain = exchange("GET", "/api/v1/runs/export", 200, None, media_type="text/plain")

    assert problems_of(EXPERIMENT, csv) == []
    assert problems_of(EXPERIMENT, plain) != []
