"""Hypothesis strategies for hostile JSON Schemas, shared by the schema fuzz test and bench/schema_fuzz.py.

They mix what a real client sends (objects, arrays, enums, $defs) with what broke the embedded
backend: quotes, backslashes and NUL characters in names and literals, empty combinators, unknown
types, huge bounds, regexes llama.cpp cannot read, $refs that do not resolve or point at a URL
(``canary_url``: an SSRF canary that must never be contacted), and booleans where schemas go.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

NAMES = st.one_of(
    st.sampled_from(["a", 'b"c', "d\\e", "nul\x00", "x y", "", "root", "pattern", "é", "line\nbreak", "{}"]),
    st.text(max_size=6),
)
LITERALS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    NAMES,
)
BOUNDS = st.one_of(
    st.integers(-3, 12),
    st.integers(0, 10**9),
    st.just(100_000_000),
    st.floats(-1, 1e12),
    st.booleans(),
    NAMES,
)
TYPES = st.one_of(
    st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array", "banana"]),
    st.lists(st.sampled_from(["string", "integer", "null", 5, "banana"]), max_size=3),
    st.integers(),
)
PATTERNS = st.sampled_from(["^[a-z]+$", "\\d{4}", "(a+)+$", "[", "\\p{L}", '^"$', "\x00", "a{1000000}"])
FORMATS = st.sampled_from(["date", "date-time", "uuid", "email", "time", "bogus"])


def refs(canary_url: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            "#/$defs/a",
            "#/$defs/b",
            "#/definitions/nope",
            "#",
            "#/properties/a",
            f"{canary_url}/schema.json",
            f"{canary_url.replace('http:', 'https:')}/schema.json#/x",
            "other.json",
        ]
    )


def leaves(canary_url: str) -> st.SearchStrategy[Any]:
    keyword = st.fixed_dictionaries(
        {},
        optional={
            "type": TYPES,
            "enum": st.lists(LITERALS, max_size=4),
            "const": LITERALS,
            "minLength": BOUNDS,
            "maxLength": BOUNDS,
            "minimum": BOUNDS,
            "maximum": BOUNDS,
            "pattern": PATTERNS,
            "format": FORMATS,
            "$ref": refs(canary_url),
        },
    )
    return st.one_of(keyword, st.booleans())


def json_schemas(canary_url: str) -> st.SearchStrategy[dict[str, Any]]:
    """Schema objects (the top level is always an object; inside, anything goes)."""

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        objects = st.fixed_dictionaries(
            {"type": st.just("object")},
            optional={
                "properties": st.one_of(
                    st.dictionaries(NAMES, children, max_size=4), st.lists(children, max_size=2)
                ),
                "required": st.lists(NAMES, max_size=3),
                "additionalProperties": st.one_of(st.booleans(), children),
                "minProperties": BOUNDS,
                "maxProperties": BOUNDS,
            },
        )
        arrays = st.fixed_dictionaries(
            {"type": st.just("array")},
            optional={
                "items": children,
                "prefixItems": st.lists(children, max_size=3),
                "minItems": BOUNDS,
                "maxItems": BOUNDS,
                "uniqueItems": st.booleans(),
            },
        )
        combined = st.fixed_dictionaries(
            {},
            optional={
                "anyOf": st.lists(children, max_size=3),
                "oneOf": st.lists(children, max_size=3),
                "allOf": st.lists(children, max_size=3),
                "not": children,
                "$defs": st.fixed_dictionaries({}, optional={"a": children, "b": children}),
            },
        )
        return st.one_of(objects, arrays, combined)

    tree = st.recursive(leaves(canary_url), extend, max_leaves=10)
    return tree.map(lambda schema: schema if isinstance(schema, dict) else {"anyOf": [schema]})
