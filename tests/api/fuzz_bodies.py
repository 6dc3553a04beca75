"""Hypothesis strategies for request bodies that look like chat or messages requests, but are wrong.

Used by ``test_fuzz.py``. Each strategy starts from the documented shape (OpenAI chat completions,
Anthropic Messages) and, field by field, either keeps a plausible value or swaps in junk: the wrong
JSON type, numbers far outside any range (beyond 64 bits too), deep nesting, odd Unicode, missing
required fields and unknown extra fields. Pure data; nothing here does I/O.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

Json = dict[str, Any]

# Text that stresses encoders: control characters, RTL marks, emoji, NUL, SSE framing.
odd_text = st.text(max_size=40) | st.sampled_from(
    ["", "\x00", "\u202e\u202d", "\U0001f600" * 20, "a" * 3000, "\r\n\r\n", "data: [DONE]", "\n\ndata: {}"]
)
# Numbers at and past every boundary a decoder or encoder has (32, 64 bits; 10**30 parses as a float).
huge_ints = st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30])
numbers = (
    st.integers()
    | huge_ints
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 5e-324])
)

json_values = st.recursive(
    st.none() | st.booleans() | numbers | odd_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def field(draw: st.DrawFn, plausible: st.SearchStrategy[Any], junk_percent: int = 20) -> Any:
    """Plausible for its field most of the time, junk otherwise: mostly-valid requests get deep
    into the translation code before one wrong field trips it, which is where crashes hide."""
    # Hypothesis favours 0 when drawing integers, so junk sits at the top of the range.
    return draw(json_values if draw(st.integers(0, 99)) >= 100 - junk_percent else plausible)


def deep_nesting(depth: int) -> bytes:
    """JSON text ``depth`` object-in-list pairs deep (twice ``depth`` levels), built as text
    because encoders refuse to go that deep."""
    return b'{"a":[' * depth + b'"bottom"' + b"]}" * depth


ROUTES = ["auto", "primary", "local", "claude", "no-such-route", "primary/gpt-4o-mini", ""]
OPENAI_ROLES = ["system", "developer", "user", "user", "assistant", "tool", "function", "robot"]
ANTHROPIC_ROLES = ["user", "user", "assistant", "assistant", "system"]

openai_part = st.fixed_dictionaries(
    {"type": field(st.sampled_from(["text", "image_url", "input_audio", "file", "refusal", "video"]))},
    optional={
        "text": field(odd_text),
        "image_url": field(st.fixed_dictionaries({"url": field(odd_text)})),
        "input_audio": json_values,
    },
)
openai_tool_call = st.fixed_dictionaries(
    {
        "id": field(odd_text),
        "type": field(st.just("function")),
        "function": field(
            st.fixed_dictionaries({"name": field(odd_text), "arguments": field(odd_text | st.just("{}"))})
        ),
    }
)
openai_message = st.fixed_dictionaries(
    {"role": field(st.sampled_from(OPENAI_ROLES), 5)},
    optional={
        "content": field(odd_text | st.lists(openai_part, max_size=3) | st.none()),
        "name": field(odd_text),
        "tool_calls": field(st.lists(openai_tool_call, max_size=2)),
        "tool_call_id": field(odd_text),
    },
)
openai_tool = st.fixed_dictionaries(
    {
        "type": field(st.just("function")),
        "function": field(
            st.fixed_dictionaries(
                {"name": field(odd_text)}, optional={"parameters": json_values, "strict": json_values}
            )
        ),
    }
)
response_format = st.fixed_dictionaries(
    {"type": field(st.sampled_from(["text", "json_object", "json_schema", "xml"]))},
    optional={"json_schema": field(st.fixed_dictionaries({"name": odd_text, "schema": json_values}))},
)
OPENAI_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "stream": field(st.booleans()),
    "stream_options": field(st.fixed_dictionaries({"include_usage": field(st.booleans())})),
    "temperature": field(numbers),
    "top_p": field(numbers),
    "max_tokens": field(st.integers(min_value=1, max_value=64) | huge_ints),
    "max_completion_tokens": field(huge_ints),
    "n": field(st.integers(-2, 3)),
    "seed": field(huge_ints),
    "stop": field(odd_text | st.lists(odd_text, max_size=5)),
    "tools": field(st.lists(openai_tool, max_size=2)),
    "tool_choice": field(st.sampled_from(["auto", "none", "required"]) | st.builds(dict, type=odd_text)),
    "response_format": field(response_format),
    "user": field(odd_text),
    "metadata": field(st.dictionaries(odd_text, odd_text, max_size=3)),
    "logprobs": field(st.booleans()),
    "top_logprobs": field(st.integers(-5, 30)),
}

anthropic_block = st.fixed_dictionaries(
    {
        "type": field(
            st.sampled_from(["text", "image", "tool_use", "tool_result", "document", "thinking", "x"])
        )
    },
    optional={
        "text": field(odd_text),
        "source": field(
            st.fixed_dictionaries(
                {"type": field(st.sampled_from(["base64", "url"]))},
                optional={"media_type": field(odd_text), "data": field(odd_text), "url": field(odd_text)},
            )
        ),
        "id": field(odd_text),
        "name": field(odd_text),
        "input": json_values,
        "tool_use_id": field(odd_text),
        "content": field(odd_text | st.lists(st.builds(dict, type=st.just("text"), text=odd_text))),
        "is_error": json_values,
        "cache_control": json_values,
    },
)
anthropic_message = st.fixed_dictionaries(
    {
        "role": field(st.sampled_from(ANTHROPIC_ROLES), 5),
        "content": field(odd_text | st.lists(anthropic_block, max_size=3), 10),
    }
)
anthropic_tool = st.fixed_dictionaries(
    {"name": field(odd_text)}, optional={"description": field(odd_text), "input_schema": json_values}
)
ANTHROPIC_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "system": field(odd_text | st.lists(st.builds(dict, type=st.just("text"), text=odd_text), max_size=2)),
    "stream": field(st.booleans()),
    "temperature": field(numbers),
    "top_p": field(numbers),
    "top_k": field(huge_ints),
    "stop_sequences": field(st.lists(odd_text, max_size=3)),
    "tools": field(st.lists(anthropic_tool, max_size=2)),
    "tool_choice": field(
        st.fixed_dictionaries(
            {"type": field(st.sampled_from(["auto", "any", "tool", "none"]))}, optional={"name": odd_text}
        )
    ),
    "metadata": field(st.fixed_dictionaries({}, optional={"user_id": odd_text, "feature": odd_text})),
    "thinking": json_values,
}


@st.composite
def _request(
    draw: st.DrawFn, required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> Json:
    body: Json = {}
    for name, strategy in required.items():
        if draw(st.integers(0, 9)) != 9:  # a required field goes missing about one time in ten
            body[name] = draw(strategy)
    body |= draw(st.fixed_dictionaries({}, optional=optional))
    body |= draw(st.dictionaries(odd_text, json_values, max_size=2))  # unknown extra fields
    return body


def chat_requests() -> st.SearchStrategy[Json]:
    required = {
        "model": field(st.sampled_from(ROUTES), 5),
        "messages": field(st.lists(openai_message, min_size=1, max_size=3), 5),
    }
    return _request(required, OPENAI_OPTIONAL)


def messages_requests() -> st.SearchStrategy[Json]:
    required = {
        "model": field(st.sampled_from(ROUTES), 5),
        "max_tokens": field(st.integers(1, 64), 10),
        "messages": field(st.lists(anthropic_message, min_size=1, max_size=3), 5),
    }
    return _request(required, ANTHROPIC_OPTIONAL)


@st.composite
def encoded(draw: st.DrawFn, bodies: st.SearchStrategy[Any]) -> bytes:
    """A body as JSON text, ASCII-escaped or raw UTF-8; now and then with one token no strict
    JSON decoder takes (``Infinity``, a 400-digit number, a lone surrogate) in a random field."""
    value = draw(bodies)
    if isinstance(value, dict) and draw(st.integers(0, 19)) == 19:
        value[draw(odd_text)] = draw(st.sampled_from([float("inf"), 10**400, "\ud800"]))
    if draw(st.booleans()):
        return json.dumps(value).encode()
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
