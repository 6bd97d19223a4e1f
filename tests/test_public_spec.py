"""openapi/public.yaml: built from the service specs by `make spec`, and held to the rules an SDK
and a reader need (unique operationIds, examples, problem+json errors, security per operation)."""

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import openapi_spec_validator
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from backend_common.openapi import load_spec
from backend_common.paths import OPENAPI_ROOT, PROJECT_ROOT

PUBLIC = OPENAPI_ROOT / "public.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
# The SDKs' smoke programs call these by name.
STABLE_OPERATION_IDS = {
    "register",
    "login",
    "create_project",
    "create_experiment",
    "create_run",
    "create_sensor",
    "ingest_telemetry",
    "list_telemetry",
    "browser_login",
    "browser_refresh",
    "browser_logout",
    "browser_me",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec(PUBLIC)


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method, path, item[method]


def resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        found: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def bodies(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, media type, media type object) of every request and response body, webhooks'
    included."""
    webhooks = [
        (method, f"webhook {name}", item[method])
        for name, item in spec.get("webhooks", {}).items()
        for method in HTTP_METHODS
        if method in item
    ]
    for method, path, operation in [*operations(spec), *webhooks]:
        where = f"{method.upper()} {path}"
        body = resolve(spec, operation.get("requestBody"))
        for media_type, content in (body or {}).get("content", {}).items():
            yield f"{where} request", media_type, content
        for status, response in operation["responses"].items():
            for media_type, content in (resolve(spec, response).get("content") or {}).items():
                yield f"{where} {status}", media_type, content


def test_committed_public_spec_is_what_the_build_gives():
    built = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bin" / "build_public_spec"), "--stdout"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert built == PUBLIC.read_text(encoding="utf-8"), "openapi/public.yaml is stale: make spec"


def test_public_spec_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1.")
    openapi_spec_validator.validate(spec)


def test_public_routes_are_those_a_client_of_the_gateway_reaches(spec):
    paths = set(spec["paths"])

    assert {"/auth/login", "/auth/refresh", "/auth/logout", "/auth/me"} <= paths
    assert {"/openapi.yaml", "/docs", "/api/v1/auth/login", "/api/v1/telemetry"} <= paths
    outside = {
        path
        for path in paths
        if not path.startswith("/api/v1/")
        and path
        not in {
            "/auth/login",
            "/auth/refresh",
            "/auth/logout",
            "/auth/me",
            "/openapi.yaml",
            "/docs",
        }
    }
    assert outside == set()
    assert "/api/{tail}" not in paths


def test_operation_ids_are_unique_and_keep_the_sdk_names(spec):
    ids = [operation["operationId"] for _, _, operation in operations(spec)]

    assert len(ids) == len(set(ids))
    assert set(ids) >= STABLE_OPERATION_IDS


def test_every_operation_has_declared_tags(spec):
    declared = {tag["name"] for tag in spec["tags"]}
    grouped = {tag for group in spec["x-tagGroups"] for tag in group["tags"]}

    for method, path, operation in operations(spec):
        assert operation.get("tags"), (method, path)
        assert set(operation["tags"]) <= declared, (method, path)
    assert declared <= grouped


def test_every_operation_states_its_security_in_known_schemes(spec):
    schemes = set(spec["components"]["securitySchemes"])

    for method, path, operation in operations(spec):
        assert "security" in operation, (method, path)
        for requirement in operation["security"]:
            assert set(requirement) <= schemes, (method, path)
    # Bearer routes also take API keys and the browser's session.
    create_run = spec["paths"]["/api/v1/experiments/{experiment_id}/runs"]["post"]
    assert create_run["security"] == [
        {"bearerAuth": []},
        {"apiKey": []},
        {"cookieAuth": [], "csrfToken": []},
    ]
    assert spec["paths"]["/api/v1/telemetry"]["post"]["security"] == [{"sensorToken": []}]


def test_every_body_has_an_example(spec):
    missing = [
        (where, media_type)
        for where, media_type, content in bodies(spec)
        if media_type != "*/*"
        and "example" not in content
        and "examples" not in content
        and "examples" not in resolve(spec, content.get("schema", {}))
    ]

    assert missing == []


def test_examples_match_their_schemas(spec):
    registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))
    wrong = []
    for where, media_type, content in bodies(spec):
        if "schema" not in content or not media_type.endswith("json"):
            continue
        validator = Draft202012Validator(rebased(content["schema"]), registry=registry)
        examples = {
            name: resolve(spec, example)["value"]
            for name, example in content.get("examples", {}).items()
        }
        if "example" in content:
            examples["example"] = content["example"]
        for name, value in examples.items():
            errors = [error.message for error in validator.iter_errors(value)]
            if errors:
                wrong.append((where, name, errors[:2]))

    assert wrong == []


SPEC_URI = "urn:etp:public"


def rebased(node: Any) -> Any:
    """A schema taken out of the document, its local refs pointing into the document."""
    if isinstance(node, dict):
        return {
            key: SPEC_URI + value if key == "$ref" and value.startswith("#") else rebased(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [rebased(item) for item in node]
    return node


def is_problem(spec: dict[str, Any], schema: Any) -> bool:
    if schema == {"$ref": "#/components/schemas/Problem"}:
        return True
    resolved = resolve(spec, schema)
    return resolved.get("type") == "object" and {
        "type",
        "title",
        "status",
        "code",
        "request_id",
    } <= set(resolved.get("required", []))


def test_every_error_answer_is_a_problem(spec):
    wrong = []
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status[0] not in "45":
                continue
            content = resolve(spec, response).get("content") or {}
            if set(content) != {"application/problem+json"} or not is_problem(
                spec, content["application/problem+json"].get("schema")
            ):
                wrong.append((method, path, status))

    assert wrong == []


def test_forwarded_routes_document_the_gateways_own_answers(spec):
    for method, path, operation in operations(spec):
        if path.startswith("/api/"):
            assert {"429", "502", "503", "504"} <= set(operation["responses"]), (method, path)
