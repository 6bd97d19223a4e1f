"""Every answer the tests get from a service is checked against that service's OpenAPI document
(openapi-core), so that the documents cannot drift from the code.

Checked: every in-process app of a service (aiohttp's TestClient: `aiohttp_client`,
`service_app_client`, `start_gateway`, ...) against its own document, and the daemons' clients
of tests/plugins/services.py, the gateway's against openapi/public.yaml (end-to-end calls check
the public document). For each answer: status, media type, body and documented headers; answers
to malformed requests too (their problem+json is in the documents). A request a service took
(2xx) must also be one its document allows. Streamed answers (no Content-Length: SSE, exports)
are checked for status and media type only: their bodies are the test's to read. An answer from
a route no document has must be an error with a problem+json body.

Not checked: HEAD and OPTIONS (CORS preflights), and what the in-process gateway forwards from
`/api/` (the mockserver's answers stand in for the services', whose own tests check them).
`@pytest.mark.unchecked_answers("why")` turns the check off for one test.
"""

import functools
import json
import re
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import test_utils
from jsonschema import Draft202012Validator
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.testing import MockRequest, MockResponse
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from testsuite.daemons import service_client

from backend_common.keys import SETTINGS

SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})
# Operations whose answers come from elsewhere: the in-process gateway's catch-all forwards the
# mockserver's answers.
FORWARDED = frozenset({("gateway.yaml", "/api/{tail}")})
STREAMED_TYPES = frozenset({"text/event-stream", "text/csv"})
_DOCUMENT = "_etp_openapi_document"
_SPEC_URI = "urn:etp:document"


class AnswerBreaksSpec(AssertionError):
    pass


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]


class Document:
    """An OpenAPI document, parsed once per session."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.server = self.spec.get("servers", [{"url": "http://localhost"}])[0]["url"]
        self.routes = sorted(
            (_route(template, _slashed(item)) for template, item in self.spec["paths"].items()),
            # Literal paths before templated ones, then fewer parameters first.
            key=lambda route: (len(route.names), route.template.count("{tail}")),
        )

    @functools.cached_property
    def openapi(self) -> OpenAPI:
        # openapi-core reads only application/json as JSON; problems are JSON too.
        config = Config(extra_media_type_deserializers={"application/problem+json": json_loads})
        return OpenAPI.from_dict(self.spec, config=config)

    @functools.cached_property
    def problem(self) -> Draft202012Validator | None:
        if "Problem" not in self.spec.get("components", {}).get("schemas", {}):
            return None
        registry = Registry().with_resource(_SPEC_URI, DRAFT202012.create_resource(self.spec))
        return Draft202012Validator(
            {"$ref": f"{_SPEC_URI}#/components/schemas/Problem"}, registry=registry
        )

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            found: Any = self.spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                found = found[part]
            node = found
        return node

    def find(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """The template of the documented operation `method path` and its path parameters."""
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found and method.lower() in self.spec["paths"][route.template]:
                return route.template, found.groupdict()
        return None


def _slashed(path_item: dict[str, Any]) -> set[str]:
    """Path parameters that may hold a `/` (`x-slashes: true`, e.g. a metric's name)."""
    return {
        parameter["name"]
        for parameter in path_item.get("parameters", [])
        if parameter.get("x-slashes")
    }


def _route(template: str, slashed: Collection[str] = ()) -> Route:
    names = tuple(re.findall(r"{(\w+)}", template))
    pattern = ""
    for literal, name in re.findall(r"([^{]*)(?:{(\w+)})?", template):
        pattern += re.escape(literal)
        if name:
            # `tail` is the gateway's "rest of the path", slashes included.
            if name == "tail":
                pattern += f"(?P<{name}>.*)"
            else:
                pattern += f"(?P<{name}>.+)" if name in slashed else f"(?P<{name}>[^/]+)"
    return Route(template, re.compile(pattern), names)


@functools.cache
def document(path: Path) -> Document:
    return Document(path)


def watch(client: Any, *paths: Path) -> Any:
    """Have the answers `client` (a testsuite service client) gets checked against the first of
    `paths` that has the route."""
    setattr(client, _DOCUMENT, paths)
    return client


def _app_documents(client: test_utils.TestClient) -> tuple[Path, ...]:
    from tests.plugins.services import SERVICES  # a cycle at import time otherwise

    server = client.server
    app = getattr(server, "app", None)
    if app is None or SETTINGS not in app:
        return ()
    settings = app[SETTINGS]
    if not any(type(settings) is spec.settings_class for spec in SERVICES.values()):
        return ()  # a test's own app (backend_common's tests)
    path = settings.openapi_path()
    return (path,) if path.is_file() else ()


@dataclass
class Exchange:
    method: str
    path: str
    query: list[tuple[str, str]]
    request_headers: dict[str, str]
    request_body: bytes | None
    status: int
    headers: Any
    body: bytes | None  # None: streamed, not read

    @property
    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def describe(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query)
        return f"{self.method} {self.path}{'?' + query if query else ''} -> {self.status}"


def problems_of(doc: Document, exchange: Exchange) -> list[str]:
    """What in the exchange its document does not allow."""
    found = doc.find(exchange.method, exchange.path)
    if found is None:
        return _undocumented(doc, exchange)
    template, path_params = found
    if (doc.path.name, template) in FORWARDED:
        return []
    operation = doc.spec["paths"][template][exchange.method.lower()]
    if exchange.body is None or not _is_json(exchange.media_type):
        return _status_and_type(doc, operation, exchange)
    cookies = SimpleCookie(exchange.request_headers.get("Cookie", ""))
    request = MockRequest(
        doc.server,
        exchange.method,
        exchange.path,
        path_pattern=template,
        args=exchange.query,  # type: ignore[arg-type]  # pairs: a name may repeat
        view_args=path_params,
        headers=exchange.request_headers,
        cookies={name: morsel.value for name, morsel in cookies.items()},
        data=exchange.request_body,
        content_type=exchange.request_headers.get("Content-Type", ""),
    )
    response = MockResponse(
        exchange.body,
        status_code=exchange.status,
        headers=dict(exchange.headers),
        content_type=exchange.headers.get("Content-Type", ""),
    )
    errors = [
        f"answer: {error}" for error in _errors(doc.openapi.validate_response, request, response)
    ]
    request_type = exchange.request_headers.get("Content-Type", "").split(";")[0].strip().lower()
    # Binary and form uploads are not checked (openapi-core reads only text bodies).
    if 200 <= exchange.status < 300 and (not exchange.request_body or _is_json(request_type)):
        errors += [f"request: {error}" for error in _errors(doc.openapi.validate_request, request)]
    return errors


def _errors(validate: Callable[..., Any], *args: Any) -> Iterator[str]:
    try:
        validate(*args)
    except Exception as exc:
        cause = exc.__cause__
        details = [
            str(error).split("\n")[0]
            for error in getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", ())
        ]
        yield f"{type(exc).__name__}: {exc}".split("\n")[0][:600] + "".join(
            f"\n      - {detail[:400]}" for detail in details[:5]
        )


def _undocumented(doc: Document, exchange: Exchange) -> list[str]:
    """A route (or method) the document does not have: only an error problem may answer."""
    if exchange.status < 400:
        return [f"{exchange.status} from a route the document does not have"]
    if exchange.media_type != "application/problem+json":
        return [f"an error of an undocumented route as {exchange.media_type!r}, not a problem"]
    if exchange.body is None or doc.problem is None:
        return []
    return [
        f"problem: {error.message}" for error in doc.problem.iter_errors(json.loads(exchange.body))
    ]


def _status_and_type(doc: Document, operation: dict[str, Any], exchange: Exchange) -> list[str]:
    """For answers whose body is not checked (streamed, or not JSON): status and media type."""
    responses = operation["responses"]
    status = str(exchange.status)
    response = responses.get(status) or responses.get(f"{status[0]}XX") or responses.get("default")
    if response is None:
        return [f"status {status} is not documented"]
    content = doc.resolve(response).get("content") or {}
    documented = {media_type.split(";")[0].strip().lower() for media_type in content}
    if content and not any(_media_matches(exchange.media_type, pattern) for pattern in documented):
        return [f"answered {exchange.media_type!r}, documented {sorted(documented)}"]
    return []


def _media_matches(media_type: str, pattern: str) -> bool:
    """`text/html` against `text/html`, `text/*` or `*/*`."""
    kind, _, subtype = pattern.partition("/")
    return pattern == media_type or (
        subtype == "*" and (kind == "*" or media_type.startswith(kind + "/"))
    )


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _request_body(kwargs: dict[str, Any]) -> bytes | None:
    if kwargs.get("json") is not None:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return None


def _is_streamed(response: aiohttp.ClientResponse) -> bool:
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return media_type in STREAMED_TYPES or (
        response.content_length is None and response.status != 204
    )


class _State:
    enabled = True
    checked = 0
    seconds = 0.0  # CPU time the checks took, loading the documents included


STATE = _State()


async def check(
    paths: tuple[Path, ...], response: aiohttp.ClientResponse, kwargs: dict[str, Any]
) -> None:
    if not paths or not STATE.enabled or response.method in SKIPPED_METHODS:
        return
    body = None if _is_streamed(response) else await response.read()
    started = time.process_time()
    try:
        _check(paths, response, kwargs, body)
    finally:
        STATE.seconds += time.process_time() - started


def _check(
    paths: tuple[Path, ...],
    response: aiohttp.ClientResponse,
    kwargs: dict[str, Any],
    body: bytes | None,
) -> None:
    request_headers = dict(response.request_info.headers)
    exchange = Exchange(
        method=response.method,
        path=response.url.raw_path,
        query=list(response.url.query.items()),
        request_headers=request_headers,
        request_body=_request_body(kwargs),
        status=response.status,
        headers=response.headers,
        body=body,
    )
    STATE.checked += 1
    docs = [document(path) for path in paths]
    doc = next((doc for doc in docs if doc.find(exchange.method, exchange.path)), docs[0])
    path = doc.path
    problems = problems_of(doc, exchange)
    if problems:
        listed = "\n  ".join(problems)
        raise AnswerBreaksSpec(
            f"{exchange.describe()} breaks {path.name}:\n  {listed}\n"
            f"  body: {(body or b'')[:500]!r}"
        )


@pytest.fixture(scope="session", autouse=True)
def _check_answers():
    """Wraps the clients' request methods for the session."""
    patch = pytest.MonkeyPatch()
    test_request = test_utils.TestClient._request
    daemon_request = service_client.GenericClient._aiohttp_request

    async def checked_test_request(self, method, path, **kwargs):
        response = await test_request(self, method, path, **kwargs)
        await check(_app_documents(self), response, kwargs)
        return response

    async def checked_daemon_request(self, http_method, path, headers, bearer, x_real_ip, **kwargs):
        response = await daemon_request(
            self, http_method, path, headers, bearer, x_real_ip, **kwargs
        )
        await check(getattr(self, _DOCUMENT, ()), response, kwargs)
        return response

    patch.setattr(test_utils.TestClient, "_request", checked_test_request)
    patch.setattr(service_client.GenericClient, "_aiohttp_request", checked_daemon_request)
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _answers_checked_unless_marked(request):
    STATE.enabled = request.node.get_closest_marker("unchecked_answers") is None
    yield
    STATE.enabled = True


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "unchecked_answers(reason): answers of this test are not checked against the spec",
    )


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)  # a pytest-xdist worker's
    if workeroutput is not None:
        workeroutput["answers_checked"] = (STATE.checked, STATE.seconds)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """Under pytest-xdist, the figures of each worker as it ends."""
    checked, seconds = getattr(node, "workeroutput", {}).get("answers_checked", (0, 0.0))
    STATE.checked += checked
    STATE.seconds += seconds


def pytest_terminal_summary(terminalreporter):
    if STATE.checked:
        terminalreporter.write_line(
            f"answers checked against the OpenAPI documents: {STATE.checked} "
            f"in {STATE.seconds:.1f} s of CPU"
        )
