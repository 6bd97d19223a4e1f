"""openapi/asyncapi.yaml: valid for the AsyncAPI parser, and listing exactly what the code sends
on its live streams (SSE event names, `end` reasons, a channel per event-stream route) and as
webhooks (the event catalogue), both ways."""

import ast
import asyncio
import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from backend_common.paths import OPENAPI_ROOT, PROJECT_ROOT
from experiment_service.domain.webhooks.policy import EVENT_TYPES, PING

SSE_EVENT = re.compile(r"(?:^|\n)event: ([A-Za-z0-9_.-]+)\n")
# Each live stream's channel and the package that serves it; backend_common's shared stream
# code (the `end` event, the checks every stream makes) counts for all of them.
STREAM_CHANNELS = {
    "telemetryStream": "telemetry_ingest_service",
    "runMetricsStream": "experiment_service",
}
PARSER_TIMEOUT = 300  # npm ci on a fresh clone, then the parser


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((OPENAPI_ROOT / name).read_text())


def resolved(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """`node`, following local `$ref`s."""
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def channel_messages(document: dict[str, Any], channel: str) -> dict[str, dict[str, Any]]:
    """The channel's messages by their `name` (the SSE event name or the webhook event type)."""
    messages = [resolved(document, m) for m in document["channels"][channel]["messages"].values()]
    return {message["name"]: message for message in messages}


def sse_channels(document: dict[str, Any]) -> list[str]:
    gateway = "#/servers/gateway"
    return [
        name
        for name, channel in document["channels"].items()
        if any(server["$ref"] == gateway for server in channel.get("servers", []))
    ]


def package_modules(package: str) -> Iterator[tuple[str, ast.Module]]:
    """Every module of a package of the repository (a service's or backend_common), by dotted
    name, parsed."""
    roots = sorted(PROJECT_ROOT.glob(f"*/*/{package}/__init__.py"))
    assert len(roots) == 1, roots
    root = roots[0].parent
    for path in sorted(root.rglob("*.py")):
        dotted = path.relative_to(root.parent).with_suffix("").parts
        yield ".".join(dotted), ast.parse(path.read_text())


def stream_modules(channel: str) -> Iterator[tuple[str, ast.Module]]:
    yield from package_modules(STREAM_CHANNELS[channel])
    yield from package_modules("backend_common")


def written_sse_events(channel: str) -> set[str]:
    """The `event:` names in the string and bytes literals of the stream's code."""
    names = set()
    for _, module in stream_modules(channel):
        for node in ast.walk(module):
            if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
                text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
                names.update(SSE_EVENT.findall(text))
    return names


def stream_end_reasons(channel: str) -> set[str]:
    """The reasons the stream's code ends a stream with: each `StreamEnded(X)`, X resolved in
    its module."""
    reasons = set()
    for name, module in stream_modules(channel):
        for node in ast.walk(module):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "StreamEnded"
            ):
                (argument,) = node.args
                if isinstance(argument, ast.Constant):
                    reasons.add(str(argument.value))
                else:
                    assert isinstance(argument, ast.Name), ast.dump(argument)
                    reasons.add(getattr(importlib.import_module(name), argument.id))
    return reasons


def test_webhook_messages_are_the_event_types_the_code_emits():
    document = load("asyncapi.yaml")

    messages = channel_messages(document, "webhooks")

    assert set(messages) == {*EVENT_TYPES, PING}
    for name, message in messages.items():
        envelope, specific = message["payload"]["allOf"]
        assert envelope == {"$ref": "#/components/schemas/WebhookEnvelope"}, name
        assert specific["properties"]["type"] == {"const": name}


def test_webhook_event_types_are_the_public_specs():
    document, spec = load("asyncapi.yaml"), load("public.yaml")

    subscribable = set(channel_messages(document, "webhooks")) - {PING}

    assert subscribable == set(spec["components"]["schemas"]["WebhookEventType"]["enum"])


def test_stream_channels_are_the_streams_the_code_serves():
    assert set(sse_channels(load("asyncapi.yaml"))) == set(STREAM_CHANNELS)


@pytest.mark.parametrize("channel", list(STREAM_CHANNELS))
def test_stream_events_are_the_ones_its_code_writes(channel):
    document = load("asyncapi.yaml")

    listed = set(channel_messages(document, channel))

    assert {"end"} < written_sse_events(channel)  # the scan finds what is there
    assert listed == written_sse_events(channel)


@pytest.mark.parametrize("channel", list(STREAM_CHANNELS))
def test_stream_end_reasons_are_the_ones_its_code_ends_streams_with(channel):
    document = load("asyncapi.yaml")

    end = channel_messages(document, channel)["end"]

    assert set(end["payload"]["properties"]["reason"]["enum"]) == stream_end_reasons(channel)


def test_every_event_stream_route_of_the_public_spec_is_a_channel():
    document, spec = load("asyncapi.yaml"), load("public.yaml")
    streams = {
        path
        for path, item in spec["paths"].items()
        for operation in item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
        if "text/event-stream" in resolved(spec, response).get("content", {})
    }

    channels = {document["channels"][name]["address"] for name in sse_channels(document)}

    assert streams  # the telemetry and run metrics streams at least
    assert channels == streams


async def test_asyncapi_document_is_valid_for_the_asyncapi_parser():
    process = await asyncio.create_subprocess_exec(
        "make",
        "--no-print-directory",
        f"VENV={sys.prefix}",
        "check-asyncapi",
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(PARSER_TIMEOUT):
        output = (await process.communicate())[0].decode()

    assert process.returncode == 0, output
    assert f"{Path(OPENAPI_ROOT / 'asyncapi.yaml')}: valid AsyncAPI 3." in output, output
