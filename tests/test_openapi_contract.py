"""Every route an app registers is in its OpenAPI file with the same method, and vice versa."""

from typing import Any

import openapi_spec_validator
import pytest
from aiohttp import web

from backend_common.openapi import load_spec
from tests.plugins.services import SERVICES

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def settings_and_app(make_settings, name: str, tmp_path) -> tuple[Any, web.Application]:
    # The gateway has its SPA route only with a static folder: give it one, so that the spec is
    # checked against every route.
    overrides = {"static_dir": tmp_path} if name == "gateway" else {}
    settings = make_settings(name, **overrides)
    return settings, SERVICES[name].create_app(settings)


def app_operations(app: web.Application) -> set[tuple[str, str]]:
    operations = set()
    for route in app.router.routes():
        if route.method == "HEAD" or route.method == "*":
            continue  # aiohttp adds HEAD to every GET route
        operations.add((route.method.lower(), route.resource.canonical))
    return operations


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


@pytest.mark.parametrize("name", list(SERVICES))
def test_openapi_spec_is_valid_openapi_3_1(make_settings, name):
    openapi_spec_validator.validate(load_spec(make_settings(name).openapi_path()))


@pytest.mark.parametrize("name", list(SERVICES))
def test_routes_match_openapi_spec(make_settings, name, tmp_path):
    settings, app = settings_and_app(make_settings, name, tmp_path)
    spec = load_spec(settings.openapi_path())

    in_app = app_operations(app)
    in_spec = spec_operations(spec)

    assert in_app - in_spec == set(), "routes missing from the spec"
    assert in_spec - in_app == set(), "spec paths the app does not serve"


@pytest.mark.parametrize("name", list(SERVICES))
def test_operation_ids_equal_route_names(make_settings, name, tmp_path):
    settings, app = settings_and_app(make_settings, name, tmp_path)
    spec = load_spec(settings.openapi_path())
    names = {
        (route.method.lower(), route.resource.canonical): route.name
        for route in app.router.routes()
        if route.method != "HEAD"
    }

    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                assert operation["operationId"] == names[(method, path)], (method, path)


@pytest.mark.parametrize("name", list(SERVICES))
async def test_openapi_yaml_is_served(service_app_client, name):
    client = await service_app_client(name)

    response = await client.get("/openapi.yaml")

    assert response.status == 200
    assert response.content_type == "application/yaml"
    assert (await response.text()).startswith("openapi: 3.1")
