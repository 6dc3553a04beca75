"""Client JSON Schemas: checked, bounded and kept inside their document before anything uses them.

A caller hands the gateway JSON Schemas in ``response_format.json_schema.schema``,
``tools[].function.parameters``, (Anthropic) ``tools[].input_schema`` and (Responses)
``text.format.schema`` / ``tools[].parameters``. The embedded backend turns
them into a llama.cpp grammar and ``cascade/checks.py`` validates answers with them, so each one is checked
and normalised at the edge first (``checked_request``):

- at most ``MAX_SCHEMA_BYTES`` of JSON, ``MAX_SCHEMA_DEPTH`` levels, ``MAX_ENUM`` literals per
  ``enum`` and ``MAX_PROPERTIES`` properties per object;
- valid against the 2020-12 metaschema (unknown ``type`` names, a ``properties`` that is not an
  object, an empty ``anyOf``/``oneOf``/``allOf`` are refused), and no empty ``enum``;
- no NUL character in any name or literal;
- ``$ref`` only to ``#...`` inside the document, resolvable there, with no cycle that never
  consumes input; ``REGISTRY`` refuses every retrieval, so no URL is ever fetched;
- boolean subschemas become objects (``true`` -> ``{}``, ``false`` -> ``{"not": {}}``), and every
  length/count bound is clamped to what the request's output can hold (``clamp_bounds``).

Every refusal is a ``RequestError`` naming the parameter. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import orjson
import regex
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

from hybridgate.errors import RequestError
from hybridgate.types import ChatRequest, Json

MAX_SCHEMA_BYTES = 64 * 1024
MAX_SCHEMA_DEPTH = 32
MAX_ENUM = 1000
MAX_PROPERTIES = 500
# When the request sets no output limit, bounds are clamped to what this many tokens can hold.
DEFAULT_OUTPUT_TOKENS = 200_000
# No tokenizer in use spends fewer tokens than this on a character of JSON text.
MAX_CHARS_PER_TOKEN = 16
CHAR_BOUNDS = ("minLength", "maxLength")
COUNT_BOUNDS = ("minItems", "maxItems", "minProperties", "maxProperties", "minContains", "maxContains")
# Keywords whose subschemas apply to the same instance: a $ref cycle through only these never ends.
_SAME_INSTANCE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas")
_REFUSED_KEYWORDS = ("$dynamicRef", "$recursiveRef")


def _refuse(uri: str) -> NoReturn:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


# Immutable: a registry that knows no documents and refuses to retrieve any.
REGISTRY: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]


def validator(schema: Json) -> Draft202012Validator:
    """A 2020-12 validator for ``schema`` whose ``$ref``s resolve inside the document or nowhere,
    and whose regular expressions give up after ``PATTERN_TIMEOUT_S`` (no catastrophic backtracking)."""
    validator: Draft202012Validator = _BoundedValidator(schema, registry=REGISTRY)
    return validator


# A regular expression from a schema may backtrack for ever on a hostile string; each search gets this.
PATTERN_TIMEOUT_S = 0.1


def _matches(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches ``text``; a pattern too slow to decide does not match."""
    try:
        return regex.search(pattern, text, timeout=PATTERN_TIMEOUT_S) is not None
    except TimeoutError:
        return False
    except regex.error:
        return True  # a pattern this engine cannot read is not held against the answer


def _pattern(validator: Any, pattern: str, instance: Any, schema: Json) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _matches(pattern, instance):
        yield ValidationError(f"{instance[:100]!r} does not match {pattern[:100]!r}")


def _pattern_properties(
    validator: Any, patterns: Json, instance: Any, schema: Json
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if _matches(pattern, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, extra: Any, instance: Any, schema: Json
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extras = [name for name in instance if name not in known and not any(_matches(p, name) for p in patterns)]
    if validator.is_type(extra, "object"):
        for name in extras:
            yield from validator.descend(instance[name], extra, path=name)
    elif extra is False and extras:
        yield ValidationError(
            f"Additional properties are not allowed ({', '.join(map(repr, extras[:10]))} unexpected)"
        )


_BoundedValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)


def checked_request(request: ChatRequest, api: str = "openai") -> ChatRequest:
    """``request`` with each of its JSON Schemas checked and normalised (a copy when any changed)."""
    cap = (request.output_limit() or DEFAULT_OUTPUT_TOKENS) * MAX_CHARS_PER_TOKEN
    update: Json = {}
    if request.response_format is not None:
        update["response_format"] = _response_format(request.response_format, api, cap)
    if request.tools:
        update["tools"] = [_tool(tool, i, api, cap) for i, tool in enumerate(request.tools)]
    return request.model_copy(update=update) if update else request


def checked(schema: Any, param: str, char_cap: int) -> Json:
    """``schema`` checked and normalised, or a ``RequestError`` naming ``param``."""
    if not isinstance(schema, dict):
        raise RequestError(f"{param} must be a JSON Schema object", param=param)
    try:
        size = len(orjson.dumps(schema))
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise RequestError(f"{param} cannot be encoded as JSON: {exc}", param=param) from exc
    if size > MAX_SCHEMA_BYTES:
        raise RequestError(f"{param} is {size} bytes of JSON; the limit is {MAX_SCHEMA_BYTES}", param=param)
    _check_shape(schema, param)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise RequestError(
            f"{param} is not a valid JSON Schema at /{where}: {exc.message}", param=param
        ) from exc
    normalised: Json = _normalise(schema, char_cap, max(1, char_cap // MAX_CHARS_PER_TOKEN))
    _check_refs(normalised, param)
    return normalised


def clamp_bounds(schema: Any, char_cap: int, count_cap: int) -> Any:
    """``schema`` with every length bound at most ``char_cap`` and every count bound at most ``count_cap``."""
    return _normalise(schema, char_cap, count_cap)


# Where each edge's callers wrote the schema (``api`` of the request context).
_FORMAT_PARAM = {"responses": "text.format.schema"}
_TOOL_PARAM = {"anthropic": "tools.{i}.input_schema", "responses": "tools[{i}].parameters"}


def _response_format(fmt: Json, api: str, cap: int) -> Json:
    kind = fmt.get("type")
    if kind != "json_schema":
        return fmt
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise RequestError(
            "response_format.json_schema must be an object with name and schema", param="response_format"
        )
    if "schema" not in spec:
        return fmt
    schema = checked(spec["schema"], _FORMAT_PARAM.get(api, "response_format.json_schema.schema"), cap)
    return {**fmt, "json_schema": {**spec, "schema": schema}}


def _tool(tool: Json, index: int, api: str, cap: int) -> Json:
    function = tool.get("function")
    if tool.get("type", "function") != "function" or not isinstance(function, dict):
        return tool
    if function.get("parameters") is None:
        return tool
    param = _TOOL_PARAM.get(api, "tools[{i}].function.parameters").format(i=index)
    parameters = checked(function["parameters"], param, cap)
    return {**tool, "function": {**function, "parameters": parameters}}


def _check_shape(schema: Json, param: str) -> None:
    """Depth, NUL characters, literal and property counts, and keywords we do not resolve."""
    stack: list[tuple[Any, int, bool]] = [(schema, 1, True)]
    while stack:
        node, depth, root = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            raise RequestError(f"{param} nests deeper than {MAX_SCHEMA_DEPTH} levels", param=param)
        if isinstance(node, str) and "\x00" in node:
            raise RequestError(f"{param} contains a NUL character", param=param)
        if isinstance(node, dict):
            _check_keywords(node, param, root)
            for key, value in node.items():
                if "\x00" in key:
                    raise RequestError(f"{param} contains a NUL character in a name", param=param)
                stack.append((value, depth + 1, False))
        elif isinstance(node, list):
            stack.extend((item, depth + 1, False) for item in node)


def _check_keywords(node: Json, param: str, root: bool) -> None:
    if refused := [k for k in _REFUSED_KEYWORDS if k in node]:
        raise RequestError(f"{param}: {refused[0]} is not supported; use $ref to #/$defs/...", param=param)
    if "$id" in node and not root:
        raise RequestError(f"{param}: $id is only allowed at the schema's root", param=param)
    if isinstance(node.get("enum"), list) and len(node["enum"]) == 0:
        raise RequestError(f"{param}: an empty enum admits no value", param=param)
    if isinstance(node.get("enum"), list) and len(node["enum"]) > MAX_ENUM:
        raise RequestError(f"{param}: an enum may list at most {MAX_ENUM} values", param=param)
    if isinstance(node.get("properties"), dict) and len(node["properties"]) > MAX_PROPERTIES:
        raise RequestError(f"{param}: an object may declare at most {MAX_PROPERTIES} properties", param=param)
    ref = node.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        raise RequestError(
            f"{param}: $ref {ref[:100]!r} points outside the schema; only #... references are resolved",
            param=param,
        )


def _normalise(node: Any, char_cap: int, count_cap: int) -> Any:
    if node is True:
        return {}
    if node is False:
        return {"not": {}}
    if isinstance(node, list):
        return [_normalise(item, char_cap, count_cap) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _subschemas(key, value, char_cap, count_cap) for key, value in node.items()}
    for key, cap in [*((k, char_cap) for k in CHAR_BOUNDS), *((k, count_cap) for k in COUNT_BOUNDS)]:
        if isinstance(out.get(key), int | float) and out[key] > cap:
            out[key] = cap
    return out


# Keywords whose values are literal data, never schemas: left exactly as sent.
_LITERALS = frozenset({"enum", "const", "default", "examples", "required", "dependentRequired"})
# Keywords where the grammar converter reads true/false itself (``additionalProperties: false``).
_BOOLEAN_OK = frozenset({"additionalProperties", "unevaluatedProperties", "unevaluatedItems"})


def _subschemas(key: str, value: Any, char_cap: int, count_cap: int) -> Any:
    if key in _LITERALS or (key in _BOOLEAN_OK and isinstance(value, bool)):
        return value
    if key in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"):
        if isinstance(value, dict):
            return {name: _normalise(sub, char_cap, count_cap) for name, sub in value.items()}
        return value
    return _normalise(value, char_cap, count_cap)


def _check_refs(schema: Json, param: str) -> None:
    resolver = REGISTRY.resolver_with_root(Resource.from_contents(schema, DRAFT202012))
    targets: dict[int, Any] = {}
    for node in _nodes(schema):
        ref = node.get("$ref")
        if not isinstance(ref, str):
            continue
        try:
            targets[id(node)] = resolver.lookup(ref).contents
        except Unresolvable as exc:
            raise RequestError(
                f"{param}: $ref {ref[:100]!r} does not resolve inside the schema", param=param
            ) from exc
    _refuse_cycles(schema, targets, param)


def _nodes(schema: Any) -> Iterator[Json]:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(v for k, v in node.items() if k not in _LITERALS)
        elif isinstance(node, list):
            stack.extend(node)


def _refuse_cycles(schema: Json, targets: dict[int, Any], param: str) -> None:
    """A ``$ref`` loop that stays on the same instance (through allOf, anyOf, ...) never ends."""
    if not targets:
        return
    state: dict[int, bool] = {}  # False: on the current path; True: done
    for start in _nodes(schema):
        if id(start) in state:
            continue
        state[id(start)] = False
        stack = [(start, _same_instance(start, targets.get))]
        while stack:
            node, children = stack[-1]
            child = next(children, _END)
            if child is _END:
                state[id(node)] = True
                stack.pop()
            elif isinstance(child, dict) and state.get(id(child)) is False:
                raise RequestError(f"{param}: $ref loops back to itself without consuming input", param=param)
            elif isinstance(child, dict) and id(child) not in state:
                state[id(child)] = False
                stack.append((child, _same_instance(child, targets.get)))


_END = object()


def _same_instance(node: Json, target: Callable[[int], Any]) -> Iterator[Any]:
    if (ref_target := target(id(node))) is not None:
        yield ref_target
    for key in _SAME_INSTANCE:
        value = node.get(key)
        if isinstance(value, list):
            yield from value
        elif key == "dependentSchemas" and isinstance(value, dict):
            yield from value.values()
        elif value is not None:
            yield value
