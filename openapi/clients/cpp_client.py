"""Generate the C++ client (`make sdk`): openapi/public.yaml, lowered to what openapi-generator's
cpp-restsdk compiles, through the generator, into clients/cpp.

The public spec is OpenAPI 3.1 with JSON Schema 2020-12 constructs that cpp-restsdk turns into C++
that does not compile: `const` on non-strings (an enum of ints or instants), a property whose type
is only `null`, `oneOf` of objects without a discriminator (a variant with no `fromJson`),
`$ref`s to string or number aliases (initialised with `nullptr`), a request body offered in
several media types (a model for the second that is never written), `uniqueItems` arrays (a
`std::set` no query parameter can be made of), and binary strings spelled with
`contentMediaType`. The lowering rewrites just those, and leaves out the `webhooks` (calls ETP
makes, not a client) and the query parameters that spread an object over the query string (the
free-form `value_filters` of `list_runs`: cpp-restsdk cannot send one). Every operation, path and
model name stays: the C++ client covers the API, with looser types where C++ has none to offer.

Only files whose bytes changed are replaced in clients/cpp, so an unchanged spec rebuilds nothing.

    python openapi/clients/cpp_client.py SPEC
"""

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "openapi" / "clients" / "cpp-restsdk.yaml"
BUILD = ROOT / "build" / "sdk"
LOWERED = BUILD / "cpp-input.yaml"  # the config's inputSpec
GENERATED = BUILD / "cpp-generated"
OUTPUT = ROOT / "clients" / "cpp"

_SCHEMA_REF = "#/components/schemas/"
_KEYWORDS_DROPPED = (
    "const",
    "if",
    "then",
    "else",
    "not",
    "dependentRequired",
    "dependentSchemas",
    "uniqueItems",
)
_NOT_SCHEMAS = ("example", "examples")


def _is_null(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null" and len(node) <= 2


def _primitive_aliases(schemas: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Component schemas that are a bare string, number, integer or boolean: inlined where
    referenced (a reference to one becomes a `nullptr` default in C++)."""
    return {
        name: schema
        for name, schema in schemas.items()
        if schema.get("type") in ("string", "number", "integer", "boolean") and "enum" not in schema
    }


def _lower_schema(node: dict[str, Any], aliases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    node = {key: value for key, value in node.items() if key not in _KEYWORDS_DROPPED}
    if isinstance(node.get("enum"), list):
        node["enum"] = [value for value in node["enum"] if value is not None]
    media_type = node.pop("contentMediaType", None)
    if node.get("type") == "string" and media_type is not None and "json" not in media_type:
        node["format"] = "binary"  # a JSON document in a string stays a string
    if isinstance(node.get("type"), list):
        types = [kind for kind in node["type"] if kind != "null"]
        node["type"] = types[0] if len(types) == 1 else types
    if node.get("type") == "null":
        del node["type"]  # always null on the wire: any JSON value in C++
    for keyword in ("oneOf", "anyOf"):
        if keyword not in node:
            continue
        branches = [branch for branch in node.pop(keyword) if not _is_null(branch)]
        if "properties" in node or node.get("type") == "object":
            continue  # alternatives of required fields: the properties say it all
        if len(branches) == 1:
            node = {**branches[0], **node}
        else:
            node.setdefault("type", "object")  # several shapes: a free-form JSON object
    ref = node.get("$ref", "")
    if ref.startswith(_SCHEMA_REF) and ref.removeprefix(_SCHEMA_REF) in aliases:
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _lower_schema({**aliases[ref.removeprefix(_SCHEMA_REF)], **siblings}, aliases)
    return node


def _lower(node: Any, aliases: dict[str, dict[str, Any]]) -> Any:
    if isinstance(node, list):
        return [_lower(item, aliases) for item in node]
    if not isinstance(node, dict):
        return node
    if "type" in node or "$ref" in node or "oneOf" in node or "anyOf" in node:
        node = _lower_schema(node, aliases)
    return {
        key: value
        if key in _NOT_SCHEMAS
        else {name: _lower(schema, aliases) for name, schema in value.items()}
        if key == "properties"
        else _lower(value, aliases)
        for key, value in node.items()
    }


def _resolved(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _is_object_in_query(spec: dict[str, Any], parameter: dict[str, Any]) -> bool:
    parameter = _resolved(spec, parameter)
    schema = _resolved(spec, parameter.get("schema", {}))
    return parameter.get("in") == "query" and schema.get("type") == "object"


def _trim_operations(spec: dict[str, Any]) -> None:
    """One media type per request body; no object spread over the query string."""
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            if len(content) > 1:
                first = next(iter(content))
                operation["requestBody"]["content"] = {first: content[first]}
            if "parameters" in operation:
                operation["parameters"] = [
                    parameter
                    for parameter in operation["parameters"]
                    if not _is_object_in_query(spec, parameter)
                ]


def lower(spec: dict[str, Any]) -> dict[str, Any]:
    aliases = _primitive_aliases(spec.get("components", {}).get("schemas", {}))
    lowered: dict[str, Any] = _lower({k: v for k, v in spec.items() if k != "webhooks"}, aliases)
    _trim_operations(lowered)
    return lowered


def sync(source: Path, target: Path) -> int:
    """Makes `target` a copy of `source`, writing only files that differ; the number written."""
    written = 0
    wanted = {path.relative_to(source) for path in source.rglob("*") if path.is_file()}
    if target.exists():
        for path in sorted(target.rglob("*"), reverse=True):
            relative = path.relative_to(target)
            if path.is_file() and relative not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    for relative in sorted(wanted):
        destination = target / relative
        if destination.exists() and filecmp.cmp(source / relative, destination, shallow=False):
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, destination)
        written += 1
    return written


def main() -> int:
    spec = yaml.safe_load(Path(sys.argv[1]).read_text())
    BUILD.mkdir(parents=True, exist_ok=True)
    LOWERED.write_text(yaml.safe_dump(lower(spec), sort_keys=False, allow_unicode=True))
    shutil.rmtree(GENERATED, ignore_errors=True)
    generator = Path(sys.executable).parent / "openapi-generator-cli"
    result = subprocess.run(
        [str(generator), "generate", "-c", str(CONFIG), "-o", str(GENERATED)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    (BUILD / "cpp-generator.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        return 1
    print(f"cpp client: {sync(GENERATED, OUTPUT)} file(s) changed in {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
