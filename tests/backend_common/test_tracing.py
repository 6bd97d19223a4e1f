import pytest
import structlog
from aiohttp import web
from opentelemetry import trace

from backend_common import tracing
from backend_common.app import create_base_app
from backend_common.http import json_response
from backend_common.keys import HTTP_CLIENT
from backend_common.settings import ServiceSettings
from tests.problems import assert_problem

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"

UPSTREAM_URL = web.AppKey("upstream_url", str)

_log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


@routes.get("/hello")
async def hello(request: web.Request) -> web.Response:
    _log.info("hello_said")
    return json_response({"hello": "world"})


@routes.get("/call-upstream")
async def call_upstream(request: web.Request) -> web.Response:
    async with request.app[HTTP_CLIENT].get(request.app[UPSTREAM_URL]) as upstream:
        body = await upstream.json()
    _log.info("upstream_called", status=upstream.status)
    return json_response(body)


def _create_app(*, upstream_url: str = "", **settings) -> web.Application:
    app = create_base_app(ServiceSettings(service_name="gateway", port=0, **settings))
    app[UPSTREAM_URL] = upstream_url
    app.router.add_routes(routes)
    return app


def _events(lines: list[dict], *names: str) -> dict[str, dict]:
    found = {line["event"]: line for line in lines if line["event"] in names}
    assert set(found) == set(names), lines
    return found


async def test_traced_request_logs_and_forwards_incoming_trace_id(
    aiohttp_client, mockserver, mockserver_info, log_lines
):
    @mockserver.json_handler("/upstream/ping")
    def upstream(request):
        return {"pong": True}

    app = _create_app(tracing_exporter="console", upstream_url=mockserver_info.url("upstream/ping"))
    client = await aiohttp_client(app)

    response = await client.get("/call-upstream", headers={"traceparent": TRACEPARENT})

    assert response.status == 200
    assert await response.json() == {"pong": True}
    events = _events(log_lines(), "upstream_called", "request")
    assert {line["trace_id"] for line in events.values()} == {TRACE_ID}
    assert events["request"]["path"] == "/call-upstream"
    assert events["request"]["request_id"] == response.headers["X-Request-Id"]
    outgoing = upstream.next_call()["request"].headers["traceparent"]
    version, trace_id, span_id, _ = outgoing.split("-")
    assert (version, trace_id) == ("00", TRACE_ID)
    assert span_id != PARENT_SPAN_ID


async def test_traced_request_without_traceparent_starts_a_trace(aiohttp_client, log_lines):
    client = await aiohttp_client(_create_app(tracing_exporter="console"))

    response = await client.get("/hello")

    assert response.status == 200
    events = _events(log_lines(), "hello_said", "request")
    trace_ids = {line["trace_id"] for line in events.values()}
    assert len(trace_ids) == 1
    assert trace_ids != {TRACE_ID}
    assert trace_ids != {"0" * 32}


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/nope", 404), ("POST", "/hello", 405)]
)
async def test_traced_routing_errors_are_still_problems(aiohttp_client, method, path, status):
    client = await aiohttp_client(_create_app(tracing_exporter="console"))

    response = await client.request(method, path, headers={"traceparent": TRACEPARENT})

    await assert_problem(response, status, "not_found" if status == 404 else "method_not_allowed")


async def test_untraced_request_logs_no_trace_id(aiohttp_client, log_lines):
    client = await aiohttp_client(_create_app())

    response = await client.get("/hello", headers={"traceparent": TRACEPARENT})

    assert response.status == 200
    events = _events(log_lines(), "hello_said", "request")
    for line in events.values():
        assert "trace_id" not in line
        assert "span_id" not in line
        assert line["request_id"] == response.headers["X-Request-Id"]
        assert line["service"] == "gateway"


def test_setup_tracing_keeps_one_provider_per_process():
    settings = ServiceSettings(service_name="gateway", port=0, tracing_exporter="console")

    first = tracing.setup_tracing(settings)
    second = tracing.setup_tracing(settings.model_copy(update={"service_name": "auth"}))

    assert first is not None
    assert second is first
    assert trace.get_tracer_provider() is first
    assert tracing.setup_tracing(ServiceSettings(service_name="gateway", port=0)) is None
