"""GET /openapi.yaml is the public spec as committed; GET /docs renders it with the vendored Redoc,
loading nothing from another origin."""

import hashlib
import json
import re

import pytest
import yaml

from backend_common.paths import OPENAPI_ROOT
from gateway_service.api.docs import DOCS_DIR


async def test_openapi_yaml_is_the_public_spec_as_it_is(gateway):
    response = await gateway.get("/openapi.yaml")

    assert response.status == 200
    assert response.content_type == "application/yaml"
    body = await response.read()
    assert body == (OPENAPI_ROOT / "public.yaml").read_bytes()
    assert "/api/v1/experiments" in yaml.safe_load(body)["paths"]


async def test_openapi_yaml_answers_the_configured_file(start_gateway, tmp_path):
    spec = tmp_path / "public.yaml"
    spec.write_text("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n")
    gateway = await start_gateway(public_openapi_file=spec)

    response = await gateway.get("/openapi.yaml")

    assert await response.read() == spec.read_bytes()


async def test_docs_page_renders_the_spec_with_the_vendored_redoc(gateway):
    response = await gateway.get("/docs")

    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert '<redoc spec-url="openapi.yaml"' in page
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert scripts == ["docs/redoc.standalone.js"]
    # No CDN: nothing in the page names another origin, and no inline script (CSP forbids it).
    assert re.search(r"(https?:)?//", page) is None
    assert re.search(r"<script(?![^>]*src=)", page) is None


async def test_docs_page_policy_allows_redoc_and_no_other_origin(gateway):
    response = await gateway.get("/docs")

    directives = dict(
        (name, rest)
        for name, _, rest in (
            part.strip().partition(" ")
            for part in response.headers["Content-Security-Policy"].split(";")
        )
    )
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self' 'unsafe-inline'"  # Redoc's styled components
    assert directives["worker-src"] == "'self' blob:"  # Redoc's search worker
    assert directives["frame-ancestors"] == "'none'"
    assert all("http" not in value and "*" not in value for value in directives.values())


async def test_other_pages_keep_the_strict_policy(start_gateway, tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><p>ETP</p>")
    gateway = await start_gateway(static_dir=tmp_path)

    response = await gateway.get("/runs")

    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


async def test_redoc_bundle_is_served_as_vendored(gateway):
    record = json.loads((DOCS_DIR / "redoc.json").read_text())

    response = await gateway.get("/docs/redoc.standalone.js")

    assert response.status == 200
    assert response.content_type == "text/javascript"
    body = await response.read()
    assert hashlib.sha256(body).hexdigest() == record["sha256"]
    assert (
        f'Version: "{record["version"]}"'
        in (DOCS_DIR / "redoc.standalone.js.LICENSE.txt").read_text()
    )


@pytest.mark.parametrize("path", ["/docs", "/openapi.yaml", "/docs/redoc.standalone.js"])
async def test_reference_routes_need_no_session(gateway, path):
    response = await gateway.get(path)

    assert response.status == 200
    assert "Set-Cookie" not in response.headers
