"""JSON Schema -> llama.cpp GBNF for the embedded backend, built so the grammar is always well formed.

Part of the ``embedded`` backend (layer 3 of the flow). Pure Python and CPU-bound: the backend runs
``grammar_text`` on a thread with a time budget, never on the event loop, and sends the text to
the engine process, where llama.cpp parses it (a grammar llama.cpp cannot parse would crash that
process, so this module makes sure it never sees one):

- the schema is checked and bounded first (``hybridgate.wire.schemas.checked``), so an empty ``anyOf``,
  an unknown type or a ``$ref`` out of the document is a 400 here too;
- literals (property names, ``enum``, ``const``) are escaped for GBNF, backslashes included; the
  converter shipped with llama-cpp-python escapes only quotes and newlines, so a ``"`` in a name
  produced a grammar that crashed llama.cpp;
- length and count bounds are clamped to ``MAX_REPEAT`` and to what ``max_tokens`` can hold:
  the converter writes ``minLength: n`` out as n copies of a rule.
"""

from __future__ import annotations

import re
from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF, SchemaConverter

from hybridgate.errors import RequestError
from hybridgate.types import Json
from hybridgate.wire import schemas

# What llama.cpp's JSON-schema converter cannot express safely is rewritten before conversion; the
# cascade's checks still validate every answer against the caller's full schema.
# - ``pattern``: regexes become grammar rules, and one it cannot parse (e.g. ``\\d``) crashes the
#   process at generation time, so patterns are left out.
# - integer ``minimum``/``maximum``: ignored by the converter; a small closed range becomes an
#   ``enum``, which it does constrain.
# - a string without ``maxLength`` gets one (``_STRING_MAX_CHARS``): a small model can otherwise
#   ramble inside a string until the token limit cuts the JSON off unterminated.
_UNSAFE_KEYWORDS = frozenset({"pattern", "patternProperties"})
_MAX_ENUM_RANGE = 1000
_STRING_MAX_CHARS = 200
# The largest repetition written into a grammar (characters of a string, items of an array).
MAX_REPEAT = 1000
# The converter's string rule admits raw control characters, which JSON forbids inside strings.
_LOOSE_CHAR = r'char ::= [^"\\]'
_JSON_CHAR = r'char ::= [^"\\\x7F\x00-\x1F]'
_EMPTY_RULE = re.compile(r"^[\w-]+ ::=\s*$", re.MULTILINE)
_CONVERTER_ERRORS = (
    AssertionError,
    AttributeError,
    IndexError,
    KeyError,
    TypeError,
    ValueError,
    RecursionError,
)


def grammar_text(schema: Json | None, max_tokens: int) -> str | None:
    """The GBNF grammar that makes every sampled reply valid JSON matching ``schema``."""
    if schema is None:
        return None
    if schema == {"type": "object"}:  # json_object: llama.cpp's own JSON grammar
        return JSON_GBNF
    bounded = schemas.checked(schema, "response_format", max_tokens * schemas.MAX_CHARS_PER_TOKEN)
    cap = min(MAX_REPEAT, max_tokens * schemas.MAX_CHARS_PER_TOKEN)
    try:
        gbnf = _gbnf(_grammar_schema(schemas.clamp_bounds(bounded, cap, min(cap, max_tokens))))
    except _CONVERTER_ERRORS as exc:
        raise RequestError(
            f"cannot constrain output to this JSON schema: {type(exc).__name__}: {str(exc)[:200]}",
            param="response_format",
        ) from exc
    if "\x00" in gbnf or _EMPTY_RULE.search(gbnf):
        raise RequestError("cannot constrain output to this JSON schema", param="response_format")
    return gbnf


class _Converter(SchemaConverter):
    """llama-cpp-python's converter with literals escaped completely (backslashes too)."""

    def _format_literal(self, literal: str) -> str:
        escaped = literal.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        return f'"{escaped}"'


def _gbnf(schema: Json) -> str:
    converter = _Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)  # type: ignore[no-untyped-call]
    converter.visit(converter.resolve_refs(schema, "stdin"), "")  # type: ignore[no-untyped-call]
    gbnf: str = converter.format_grammar()  # type: ignore[no-untyped-call]
    return gbnf.replace(_LOOSE_CHAR, _JSON_CHAR)


def _grammar_schema(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    low, high = schema.get("minimum"), schema.get("maximum")
    integer = schema.get("type") == "integer"
    if integer and isinstance(low, int) and isinstance(high, int) and 0 <= high - low <= _MAX_ENUM_RANGE:
        return {"enum": list(range(low, high + 1))}
    rewritten = {k: _rewritten(k, v) for k, v in schema.items() if k not in _UNSAFE_KEYWORDS}
    if schema.get("type") == "string" and not {"maxLength", "enum", "const", "format"} & schema.keys():
        rewritten["maxLength"] = _STRING_MAX_CHARS
    return rewritten


def _rewritten(keyword: str, value: Any) -> Any:
    if keyword in ("enum", "const", "required", "default", "examples"):
        return value
    if keyword in ("properties", "$defs", "definitions", "dependentSchemas") and isinstance(value, dict):
        return {name: _grammar_schema(sub) for name, sub in value.items()}
    if isinstance(value, list):
        return [_grammar_schema(item) for item in value]
    return _grammar_schema(value)
