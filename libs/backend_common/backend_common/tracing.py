"""OpenTelemetry: off by default; `tracing_exporter` picks console or OTLP/HTTP."""

from typing import Any

import aiohttp
from aiohttp import web
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

from backend_common.settings import ServiceSettings

_provider: TracerProvider | None = None


def setup_tracing(settings: ServiceSettings) -> TracerProvider | None:
    """The process-wide tracer provider, created on first use; None when tracing is off."""
    global _provider
    if settings.tracing_exporter == "off":
        return None
    if _provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
        if settings.tracing_exporter == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _provider = provider
    return _provider


def server_middleware(provider: TracerProvider) -> Any:
    """A SERVER span per request that continues the caller's W3C `traceparent`.

    Not opentelemetry-instrumentation-aiohttp-server's create_aiohttp_middleware: it fails on
    every request unless AioHttpServerInstrumentor().instrument() ran, which also replaces
    web.Application process-wide.
    """
    tracer = provider.get_tracer(__name__)

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.resource
        attributes = {"http.request.method": request.method, "url.path": request.path}
        if route is not None:
            attributes["http.route"] = route.canonical
        with tracer.start_as_current_span(
            f"{request.method} {attributes.get('http.route', '')}".rstrip(),
            context=propagate.extract(request.headers),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            response = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(trace.StatusCode.ERROR)
            return response

    return middleware


def client_trace_configs(provider: TracerProvider | None) -> list[aiohttp.TraceConfig]:
    """Trace configs for outgoing calls: a client span and the W3C `traceparent` header."""
    return [] if provider is None else [create_trace_config(tracer_provider=provider)]
