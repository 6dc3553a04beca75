"""What the embedded backend says to a small local model, and how it reads the answer back.

Part of the ``embedded`` backend (layer 3 of the flow). Pure functions over plain data: OpenAI
messages become plain ``{role, content}`` strings a chat template can render; ``tools`` become a
system-prompt convention; a reply in that convention becomes OpenAI ``tool_calls``; and
``response_format`` / a forced ``tool_choice`` become the JSON Schema that grammar-constrained
decoding enforces. No llama.cpp, no I/O, nothing about routing.

The tool-call convention (SmolLM2 has no native tool format we can rely on): the tools are listed
as JSON in the system prompt and the model is asked to reply with only
``{"name": "<tool name>", "arguments": {...}}``. A reply counts as a call when, after stripping
whitespace and a Markdown code fence, it is exactly one such JSON object naming a known tool.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from hybridgate.errors import RequestError
from hybridgate.types import ChatRequest, Json, Message

TOOL_INSTRUCTIONS = (
    "You can call these functions (JSON list of name, description and JSON-Schema parameters):\n"
    "{tools}\n"
    'To call a function, reply with only a JSON object: {{"name": "<function name>", '
    '"arguments": {{<arguments as JSON>}}}}.'
)
AUTO_SUFFIX = " If no function is needed, answer normally in plain text."
FORCED_SUFFIX = " You must call {which} now."

_FENCE = re.compile(r"^```[a-zA-Z]*\s*(.*?)\s*```$", re.DOTALL)


def functions(request: ChatRequest) -> list[Json]:
    """The request's function tools as ``{name, description, parameters}``; other tool types dropped."""
    found = []
    for tool in request.tools or []:
        function = tool.get("function") if tool.get("type", "function") == "function" else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            found.append(function)
    return found


def forced_tool(request: ChatRequest) -> str | None:
    """The tool name the caller forces, ``"*"`` for any tool (``required``), or None."""
    choice = request.tool_choice
    if not functions(request) or choice in (None, "auto", "none"):
        return None
    if choice == "required":
        return "*"
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    known = [f["name"] for f in functions(request)]
    if name not in known:
        raise RequestError(
            f"tool_choice names function {name!r}; the request's tools are: {', '.join(known)}",
            param="tool_choice",
        )
    return str(name)


def uses_tools(request: ChatRequest) -> bool:
    return bool(functions(request)) and request.tool_choice != "none"


def template_messages(request: ChatRequest) -> list[dict[str, str]]:
    """Messages as plain strings in roles every ChatML-style template knows, tools prompt included."""
    rendered = [_plain(message) for message in request.messages]
    if uses_tools(request):
        instructions = _tools_prompt(request)
        if rendered[0]["role"] == "system":
            rendered[0] = {"role": "system", "content": f"{rendered[0]['content']}\n\n{instructions}"}
        else:
            rendered.insert(0, {"role": "system", "content": instructions})
    return rendered


def _plain(message: Message) -> dict[str, str]:
    # Small models were trained on system/user/assistant only; tool results are shown as user
    # turns and earlier tool calls in the same JSON convention the model is asked to use.
    if message.role == "developer":
        return {"role": "system", "content": message.text()}
    if message.role in ("tool", "function"):
        who = message.name or message.tool_call_id or "the function"
        return {"role": "user", "content": f"Result from {who}:\n{message.text()}"}
    if message.role == "assistant" and message.tool_calls:
        calls = [_call_as_text(call) for call in message.tool_calls]
        return {"role": "assistant", "content": "\n".join(filter(None, [message.text(), *calls]))}
    return {"role": message.role, "content": message.text()}


def _call_as_text(call: Json) -> str:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError:
        arguments = function.get("arguments")
    return json.dumps({"name": function.get("name"), "arguments": arguments})


def _tools_prompt(request: ChatRequest) -> str:
    listing = json.dumps(
        [{k: f[k] for k in ("name", "description", "parameters") if k in f} for f in functions(request)]
    )
    forced = forced_tool(request)
    if forced is None:
        return TOOL_INSTRUCTIONS.format(tools=listing) + AUTO_SUFFIX
    which = "one of the functions" if forced == "*" else f"the function {forced}"
    return TOOL_INSTRUCTIONS.format(tools=listing) + FORCED_SUFFIX.format(which=which)


def output_schema(request: ChatRequest) -> Json | None:
    """The JSON Schema the reply must match, or None for free text. A forced tool call wins."""
    forced = forced_tool(request)
    if forced is not None:
        chosen = [f for f in functions(request) if forced in ("*", f["name"])]
        return {"anyOf": [_call_schema(f) for f in chosen]} if len(chosen) > 1 else _call_schema(chosen[0])
    fmt = request.response_format or {"type": "text"}
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return schema
        raise RequestError("response_format json_schema needs json_schema.schema", param="response_format")
    raise RequestError(
        f"response_format type {kind!r} is not supported; use text, json_object or json_schema",
        param="response_format",
    )


def _call_schema(function: Json) -> Json:
    parameters = function.get("parameters") or {"type": "object"}
    return {
        "type": "object",
        "properties": {"name": {"const": function["name"]}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def penalty(request: ChatRequest, key: str) -> float:
    """``frequency_penalty`` / ``presence_penalty``: not ChatRequest fields, so checked here."""
    value = (request.model_extra or {}).get(key)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not -2 <= value <= 2:
        raise RequestError(f"{key} must be a number between -2 and 2", param=key)
    return float(value)


def number(request: ChatRequest, key: str, low: float, high: float) -> float | None:
    """An optional numeric extension field (``top_k``, ``repetition_penalty``), range-checked."""
    value = (request.model_extra or {}).get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise RequestError(f"{key} must be a number between {low:g} and {high:g}", param=key)
    return float(value)


def parse_tool_call(text: str, tools: list[Json]) -> Json | None:
    """The OpenAI ``tool_calls`` entry ``text`` encodes under our convention, or None for plain text."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        call: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(call, dict) or set(call) - {"name", "arguments", "parameters"}:
        return None
    name = call.get("name")
    arguments = call.get("arguments", call.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if name not in {f["name"] for f in tools} or not isinstance(arguments, dict):
        return None
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
