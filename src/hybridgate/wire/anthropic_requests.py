"""Anthropic Messages request <-> OpenAI chat-completions request (``ChatRequest``).

``to_anthropic_request`` serves backends/anthropic.py (outbound); ``from_anthropic_request`` serves
the ``/v1/messages`` ingress (inbound). Both read a caller's request, so malformed input is a
``RequestError``. Pure functions: no I/O, no knowledge of routing or backends.

The small pieces, in both directions, are at the end: content parts, tools and tool choice. What
the other side has no slot for (audio parts, server tools) is refused with a ``RequestError``
naming the part: these pieces always come from a caller's request, never from an upstream.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from hybridgate.config import describe_validation_error
from hybridgate.errors import RequestError
from hybridgate.types import ChatRequest, Json, Message
from hybridgate.wire.anthropic_schema import check_messages_request
from hybridgate.wire.fields import ANTHROPIC_EXTRA, anthropic_fields, thinking_budget

# Anthropic's sampling range is [0, 1]; OpenAI's is [0, 2]. Clamping keeps "hot" requests valid.
_MAX_TEMPERATURE = 1.0
# Messages API fields with an OpenAI slot; every other field rides along for Anthropic upstreams.
_TRANSLATED = frozenset(
    ("model", "max_tokens", "messages", "system", "tools", "tool_choice", "stop_sequences", "temperature")
) | frozenset(("top_p", "top_k", "stream", "metadata"))


# --- OpenAI -> Anthropic ---------------------------------------------------------------------


def to_anthropic_request(
    request: ChatRequest, model: str, *, default_max_tokens: int, stream: bool = False
) -> Json:
    """The Messages API body for ``request`` sent to ``model``.

    Anthropic requires ``max_tokens``: the request's own limit, else ``default_max_tokens``.
    """
    body: Json = {
        "model": model,
        "max_tokens": request.output_limit() or default_max_tokens,
        "messages": _anthropic_turns(request.messages),
    }
    system = _anthropic_system(request.messages)
    passthrough = anthropic_fields(request)
    structured = "output_config" in passthrough or "output_format" in passthrough
    if not structured and (instruction := json_instruction(request.response_format)):
        # The Messages API has no response_format: ask for JSON in words; cascade/checks.py verifies it.
        system = _with_instruction(system, instruction)
    if system:
        body["system"] = system
    if request.stop_list():
        body["stop_sequences"] = request.stop_list()
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, _MAX_TEMPERATURE)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if isinstance(top_k := (request.model_extra or {}).get("top_k"), int):
        body["top_k"] = top_k
    if request.tools:
        body["tools"] = [anthropic_tool(tool) for tool in request.tools]
        parallel = (request.model_extra or {}).get("parallel_tool_calls")
        if choice := anthropic_tool_choice(request.tool_choice, parallel):
            body["tool_choice"] = choice
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if stream:
        body["stream"] = True
    if "thinking" not in passthrough and (budget := thinking_budget(request, request.output_limit())):
        # reasoning_effort (wire/fields.py); thinking takes no temperature or top_k, top_p >= 0.95
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if not request.output_limit():  # the default limit is for the answer: thinking comes on top
            body["max_tokens"] = default_max_tokens + budget
        body.pop("temperature", None)
        body.pop("top_k", None)
        if body.get("top_p", 1.0) < 0.95:
            body.pop("top_p")
    return body | passthrough


def json_instruction(response_format: Json | None) -> str | None:
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        return "Reply with one JSON object and nothing else: no prose, no code fence."
    schema = ((response_format or {}).get("json_schema") or {}).get("schema")
    if kind == "json_schema" and isinstance(schema, dict):
        return (
            "Reply with one JSON value and nothing else (no prose, no code fence) that validates "
            f"against this JSON schema: {json.dumps(schema, separators=(',', ':'))}"
        )
    return None


def _with_instruction(system: str | list[Json] | None, instruction: str) -> str | list[Json]:
    if system is None:
        return instruction
    if isinstance(system, str):
        return f"{system}\n\n{instruction}"
    return [*system, {"type": "text", "text": instruction}]


def _anthropic_system(messages: list[Message]) -> str | list[Json] | None:
    # Anthropic has one top-level system prompt; OpenAI system/developer messages anywhere in the
    # conversation are hoisted into it, in order.
    blocks: list[Json] = []
    for message in messages:
        if message.role in ("system", "developer"):
            blocks += [b for b in _blocks(message.content) if b["type"] == "text"]
    if len(blocks) == 1 and set(blocks[0]) == {"type", "text"}:
        return str(blocks[0]["text"])
    return blocks or None


def _anthropic_turns(messages: list[Message]) -> list[Json]:
    turns: list[Json] = []
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        role, blocks = _anthropic_turn(message)
        if not blocks:
            continue
        # Consecutive tool results (and a user message after them) become one user turn: the
        # Messages API wants all tool_result blocks for an assistant turn in the next user turn.
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _anthropic_turn(message: Message) -> tuple[str, list[Json]]:
    if message.role == "user":
        return "user", _blocks(message.content)
    if message.role == "assistant":
        thinking = list((message.model_extra or {}).get("thinking_blocks") or [])
        calls = [_tool_use(c) for c in message.tool_calls or []]
        return "assistant", [*thinking, *_blocks(message.content), *calls]
    if message.role == "tool":
        return "user", [_tool_result(message)]
    raise RequestError("role 'function' is not supported; send tool messages instead", param="messages")


def _blocks(content: str | list[Json] | None) -> list[Json]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = [block_from_part(part) for part in content or []]
    # The Messages API rejects empty text blocks; OpenAI clients send them freely.
    return [b for b in blocks if b["type"] != "text" or b["text"]]


def _tool_use(call: Json) -> Json:
    function = call.get("function") or {}
    name = str(function.get("name", ""))
    return {
        "type": "tool_use",
        "id": call.get("id"),
        "name": name,
        "input": tool_input(function.get("arguments"), name),
    }


def _tool_result(message: Message) -> Json:
    if not message.tool_call_id:
        raise RequestError("a tool message needs tool_call_id", param="messages")
    content: str | list[Json] = (
        message.content if isinstance(message.content, str) else _blocks(message.content)
    )
    result: Json = {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": content}
    extra = message.model_extra or {}
    return result | {k: extra[k] for k in ("cache_control", "is_error") if extra.get(k) is not None}


# --- Anthropic -> OpenAI ---------------------------------------------------------------------


def from_anthropic_request(body: Any, beta: str | None = None) -> ChatRequest:
    """A Messages API request body (already JSON-decoded) as a ``ChatRequest``.

    Fields with no OpenAI slot (thinking, context_management, ...) and the ``anthropic-beta``
    header ride along under the ``anthropic`` extra, for Anthropic upstreams (wire/fields.py).
    """
    check_messages_request(body)
    messages = _openai_system(body.get("system"))
    for turn in body["messages"]:
        messages += _openai_messages(turn)
    fields: Json = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            fields[name] = body[name]
    passthrough = {k: v for k, v in body.items() if k not in _TRANSLATED}
    if (response_format := _response_format(passthrough)) is not None:
        fields["response_format"] = response_format
    if passthrough or beta:
        fields[ANTHROPIC_EXTRA] = {"fields": passthrough, **({"beta": beta} if beta else {})}
    if body.get("stop_sequences"):
        fields["stop"] = body["stop_sequences"]
    if body.get("tools"):
        fields["tools"] = [openai_tool(tool) for tool in body["tools"]]
    if isinstance(body.get("tool_choice"), dict):
        fields["tool_choice"], parallel = openai_tool_choice(body["tool_choice"])
        if parallel is not None:
            fields["parallel_tool_calls"] = parallel
    if isinstance(body.get("metadata"), dict) and body["metadata"].get("user_id"):
        fields["user"] = str(body["metadata"]["user_id"])
    if body.get("stream"):
        # message_delta must carry usage, so ask every backend for it.
        fields["stream"] = True
        fields["stream_options"] = {"include_usage": True}
    try:
        return ChatRequest.model_validate(fields)
    except ValidationError as exc:
        raise RequestError(describe_validation_error(exc)) from exc


def _response_format(passthrough: Json) -> Json | None:
    """``output_config.format`` (or the older ``output_format``) as OpenAI's ``response_format``."""
    config = passthrough.get("output_config")
    where, format_ = "output_config.format", config.get("format") if isinstance(config, dict) else None
    if format_ is None and "output_format" in passthrough:
        where, format_ = "output_format", passthrough["output_format"]
    if format_ is None:
        return None
    schema = format_.get("schema") if isinstance(format_, dict) else None
    if not isinstance(format_, dict) or format_.get("type") != "json_schema" or not isinstance(schema, dict):
        raise RequestError(f'{where} must be {{"type": "json_schema", "schema": {{...}}}}', param=where)
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


def _openai_system(system: Any) -> list[Json]:
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if isinstance(system, list) and system:
        return [{"role": "system", "content": [part_from_block(b) for b in system if isinstance(b, dict)]}]
    return []


def _openai_messages(turn: Json) -> list[Json]:
    role, content = turn.get("role"), turn.get("content")
    if role not in ("user", "assistant", "system"):
        raise RequestError(
            f"messages: role must be 'user', 'assistant' or 'system', not {role!r}", param="messages"
        )
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise RequestError("messages: content must be a string or a list of blocks", param="messages")
    if role == "system":
        # The API folds system-role turns into the system prompt; an OpenAI system message in place
        # says the same to every tier (and is hoisted again for Anthropic upstreams).
        return _openai_system(content)
    return _openai_user(content) if role == "user" else [_openai_assistant(content)]


def _openai_user(blocks: list[Json]) -> list[Json]:
    # OpenAI wants tool results as separate tool messages right after the assistant turn, so
    # they come first, then whatever else the user turn said.
    results = [_tool_message(b) for b in blocks if b.get("type") == "tool_result"]
    parts = [part_from_block(b) for b in blocks if b.get("type") != "tool_result"]
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _tool_message(block: Json) -> Json:
    content = block.get("content")
    if isinstance(content, list):
        parts = [part_from_block(b) for b in content if isinstance(b, dict)]
        if any(p["type"] != "text" for p in parts):
            raise RequestError("tool_result content can only hold text here", param="messages")
        content = "\n".join(p["text"] for p in parts)
    message: Json = {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": content or ""}
    # Anthropic-only marks, kept for Anthropic upstreams (types.upstream_body drops them for others)
    return message | {k: block[k] for k in ("cache_control", "is_error") if block.get(k) is not None}


def _openai_assistant(blocks: list[Json]) -> Json:
    texts: list[str] = []
    calls: list[Json] = []
    thinking: list[Json] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {})
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(block)  # signed: goes back to Anthropic unchanged, nowhere else
        else:
            raise RequestError(f"assistant content block type '{kind}' is not supported", param="messages")
    message: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["thinking_blocks"] = thinking
    return message


# The small pieces: content parts, tools and tool choice.

_DATA_URL = re.compile(r"data:(?P<media>[\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[^;,]*)*;base64,(?P<data>.*)", re.S)
_DEFAULT_SCHEMA: Json = {"type": "object", "properties": {}}


def _keep_cache_control(target: Json, source: Json) -> Json:
    # Prompt-caching marks are Anthropic's; OpenAI-shaped clients that know them (and our own
    # Anthropic ingress) put them on text parts, so they survive the trip in both directions.
    if "cache_control" in source:
        target["cache_control"] = source["cache_control"]
    return target


def image_source(url: str) -> Json:
    """An OpenAI ``image_url`` URL as an Anthropic image ``source`` (base64 or url)."""
    if match := _DATA_URL.fullmatch(url):
        return {"type": "base64", "media_type": match["media"], "data": match["data"]}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise RequestError("image_url must be a base64 data: URL or an http(s) URL", param="messages")


def image_url(source: Json) -> str:
    """An Anthropic image ``source`` as an OpenAI ``image_url`` URL."""
    if source.get("type") == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    raise RequestError(f"image source type '{source.get('type')}' is not supported", param="messages")


def block_from_part(part: Json) -> Json:
    """One OpenAI content part (text, image_url) as an Anthropic content block."""
    kind = part.get("type")
    if isinstance(part.get("document"), dict):
        return dict(part["document"])  # a document block from the Anthropic edge, as it came
    if kind == "text":
        return _keep_cache_control({"type": "text", "text": str(part.get("text", ""))}, part)
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise RequestError("an image_url part needs image_url.url", param="messages")
        return _keep_cache_control({"type": "image", "source": image_source(url)}, part)
    raise RequestError(
        f"content part type '{kind}' cannot be sent to the Anthropic Messages API; use text or image_url",
        param="messages",
    )


def part_from_block(block: Json) -> Json:
    """One Anthropic content block (text, image) as an OpenAI content part."""
    kind = block.get("type")
    if kind == "text":
        return _keep_cache_control({"type": "text", "text": str(block.get("text", ""))}, block)
    if kind == "image":
        source = block.get("source")
        if not isinstance(source, dict):
            raise RequestError("an image block needs a source object", param="messages")
        return _keep_cache_control({"type": "image_url", "image_url": {"url": image_url(source)}}, block)
    if kind == "document":
        return document_part(block)
    raise RequestError(
        f"content block type '{kind}' is not supported; use text, image or document", param="messages"
    )


def document_part(block: Json) -> Json:
    """A document block: plain-text documents read as text by every tier; other sources (PDF,
    URL, content) keep their own part type, which only Anthropic upstreams accept (wire/fields.py).
    The block itself rides along so an Anthropic upstream gets it unchanged."""
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text" and isinstance(source.get("data"), str):
        title = block.get("title")
        text = f"{title}\n\n{source['data']}" if isinstance(title, str) and title else source["data"]
        return {"type": "text", "text": text, "document": block}
    return {"type": "document", "document": block}


def tool_input(arguments: object, name: str) -> Json:
    """The JSON object an OpenAI tool call's ``arguments`` string encodes (Anthropic's ``input``)."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError as exc:
        raise RequestError(f"tool call '{name}' has arguments that are not JSON", param="messages") from exc
    if not isinstance(value, dict):
        raise RequestError(f"tool call '{name}' arguments must be a JSON object", param="messages")
    return value


def anthropic_tool(tool: Json) -> Json:
    """An OpenAI ``{"type": "function", "function": {...}}`` tool as an Anthropic tool."""
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict) or "name" not in function:
        raise RequestError("only function tools can be sent to the Anthropic Messages API", param="tools")
    converted: Json = {
        "name": function["name"],
        "input_schema": function.get("parameters") or _DEFAULT_SCHEMA,
    }
    if function.get("description"):
        converted["description"] = function["description"]
    return _keep_cache_control(converted, tool)


def openai_tool(tool: Json) -> Json:
    """An Anthropic client tool (name, description, input_schema) as an OpenAI function tool."""
    if tool.get("type", "custom") != "custom" or "name" not in tool:
        raise RequestError(
            f"tool type '{tool.get('type')}' is not supported; only client tools", param="tools"
        )
    function: Json = {"name": tool["name"], "parameters": tool.get("input_schema") or _DEFAULT_SCHEMA}
    if tool.get("description"):
        function["description"] = tool["description"]
    # cache_control rides on the tool for Anthropic upstreams; types.upstream_body drops it for others
    return _keep_cache_control({"type": "function", "function": function}, tool)


def anthropic_tool_choice(choice: str | Json | None, parallel_tool_calls: object) -> Json | None:
    """OpenAI ``tool_choice`` + ``parallel_tool_calls`` as Anthropic's ``tool_choice`` object."""
    if choice is None:
        converted: Json = {"type": "auto"}
    elif choice in ("auto", "none"):
        converted = {"type": choice}
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        converted = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise RequestError(f"tool_choice {choice!r} is not supported", param="tool_choice")
    if parallel_tool_calls is False and converted["type"] != "none":
        converted["disable_parallel_tool_use"] = True
    if choice is None and len(converted) == 1:
        return None  # nothing said, nothing to send: Anthropic defaults to auto
    return converted


def openai_tool_choice(choice: Json) -> tuple[str | Json, bool | None]:
    """Anthropic ``tool_choice`` as OpenAI ``(tool_choice, parallel_tool_calls)``."""
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind in ("auto", "none"):
        return str(kind), parallel
    if kind == "any":
        return "required", parallel
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}, parallel
    raise RequestError(f"tool_choice type '{kind}' is not supported", param="tool_choice")
